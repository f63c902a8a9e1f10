"""Opening a store: a file in WAL mode with its folder, foreign keys on, and refusals that say why."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from core.errors import StoreError
from core.store import CURRENT_VERSION, Store
from tests.core.store import T0


def test_a_file_store_creates_its_folder_and_runs_in_wal_mode(db_path: Path) -> None:
    with Store.open(db_path) as s:
        assert db_path.is_file()
        assert s.journal_mode() == "wal"
        assert s.schema_version() == CURRENT_VERSION
    raw = sqlite3.connect(db_path)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # persists in the file
    raw.close()


def test_foreign_keys_are_enforced_so_an_order_needs_its_proposal(store: Store) -> None:
    with pytest.raises(StoreError, match="save the proposal first"):
        store.record_order("P-missing", 0, "c-1", {}, "submitted", T0)


def test_a_file_that_is_not_sqlite_is_refused_with_its_path_and_the_fix(tmp_path: Path) -> None:
    bad = tmp_path / "premia.db"
    bad.write_bytes(b"this is a CSV export, not a database\n" * 200)
    with pytest.raises(StoreError) as info:
        Store.open(bad)
    assert str(bad) in str(info.value)
    assert "move it aside" in str(info.value)


def test_a_directory_is_refused_as_a_store_path(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="is a directory"):
        Store.open(tmp_path)


def test_a_file_from_a_newer_premia_is_refused(db_path: Path) -> None:
    Store.open(db_path).close()
    raw = sqlite3.connect(db_path)
    raw.execute("INSERT INTO schema_version (version, name, applied_at) VALUES (99, 'x', 'now')")
    raw.commit()
    raw.close()
    with pytest.raises(StoreError, match=r"schema version 99.*upgrade Premia"):
        Store.open(db_path)


def test_a_closed_store_says_so(db_path: Path) -> None:
    s = Store.open(db_path)
    s.close()
    with pytest.raises(StoreError, match="closed"):
        s.get_flag("paused")
