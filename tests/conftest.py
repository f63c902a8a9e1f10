"""Fixtures shared by every test: the shared market data folder and a throw-away config."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(
    os.environ.get("PREMIA_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (or $PREMIA_SHARED_DATA); tests that need it skip with the reason."""
    if not (SHARED_DATA / "derived").is_dir():
        pytest.skip(f"shared market data not found at {SHARED_DATA}; set PREMIA_SHARED_DATA")
    return SHARED_DATA
