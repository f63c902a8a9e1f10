"""Fixtures shared by every test: the shared market data folder and a throw-away config."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.fakes.exchange_server import FakeExchange
    from tests.fakes.fng_server import FakeFearGreed

SHARED_DATA = Path(
    os.environ.get("PREMIA_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (or $PREMIA_SHARED_DATA); tests that need it skip with the reason."""
    if not (SHARED_DATA / "derived").is_dir():
        pytest.skip(f"shared market data not found at {SHARED_DATA}; set PREMIA_SHARED_DATA")
    return SHARED_DATA


@pytest.fixture
def short_retry_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries of transient feed errors wait milliseconds, not the production backoff."""
    from core.feeds import retry

    monkeypatch.setattr(retry, "WAIT_INITIAL_S", 0.01)
    monkeypatch.setattr(retry, "WAIT_MAX_S", 0.05)


@pytest.fixture
async def exchange() -> AsyncIterator[FakeExchange]:
    """The loopback exchange serving the recorded payloads (skips without ../shared/data)."""
    from tests.feeds import started_exchange

    server = await started_exchange()
    yield server
    await server.close()


@pytest.fixture
async def servers() -> AsyncIterator[tuple[FakeExchange, FakeFearGreed]]:
    """The loopback exchange and the Fear & Greed server, together."""
    from tests.fakes.exchange_server import FakeExchange
    from tests.fakes.fng_server import FakeFearGreed
    from tests.feeds import require_shared_data

    require_shared_data()
    async with FakeExchange() as ex, FakeFearGreed() as fng:
        yield ex, fng
