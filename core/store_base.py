"""The store's connection: opening, pragmas, migrations on open, and transactions.

One `sqlite3` connection in driver autocommit mode, wrapped by sqlite-utils. Writes run in
`BEGIN IMMEDIATE` transactions so that a read-then-write (compare-and-set, dedupe) is atomic
across processes sharing the file; WAL lets readers go on while one process writes.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

from sqlite_utils import Database
from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_random

from core.errors import StoreError
from core.store_schema import migrate, schema_version

DEFAULT_BUSY_TIMEOUT_MS = 10_000


def _owner() -> tuple[int, int | None]:
    """Who is running: the thread, and the asyncio task inside it when there is one."""
    try:
        task = asyncio.current_task()
    except RuntimeError:  # no running event loop in this thread
        task = None
    return threading.get_ident(), None if task is None else id(task)


def _is_locked(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)


def _switch_to_wal(conn: sqlite3.Connection, busy_ms: int) -> str:
    """Set WAL journaling and return the mode now in force.

    SQLite does not call the busy handler for this pragma, so two processes creating the same
    file at once would see "database is locked"; retry it for up to the busy timeout instead.
    """
    for attempt in Retrying(
        retry=retry_if_exception(_is_locked),
        stop=stop_after_delay(busy_ms / 1000),
        wait=wait_random(0.005, 0.05),
        reraise=True,
    ):
        with attempt:
            return str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
    raise AssertionError("unreachable: Retrying either returns or re-raises")


class StoreBase:
    """Connection handling shared by every part of `Store`."""

    def __init__(self, conn: sqlite3.Connection, path: str) -> None:
        self.path = path
        self._conn = conn
        self._db = Database(conn, execute_plugins=False)
        # One connection serves every thread and task: the lock serialises its use, and the
        # owner check stops a second asyncio task from silently joining an open transaction.
        self._lock = threading.RLock()
        self._depth = 0
        self._tx_owner: tuple[int, int | None] | None = None
        self._closed = False

    # ── opening and closing ────────────────────────────────────────────────────────────────

    @classmethod
    def open(cls, path: Path | str, *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS) -> Self:
        """Open (creating if needed) the store file and bring its schema up to date."""
        target = Path(path).expanduser()
        if target.is_dir():
            raise StoreError(f"store path {target} is a directory; point store_path at a file")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the folder for the store {target}: {exc}") from None
        try:
            conn = sqlite3.connect(
                str(target),
                isolation_level=None,  # we issue BEGIN IMMEDIATE ourselves
                check_same_thread=False,  # guarded by the store's lock
                timeout=busy_timeout_ms / 1000,
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the store {target}: {exc}; check its permissions") from None
        return cls._setup(conn, str(target), busy_timeout_ms, wal=True)

    @classmethod
    def memory(cls) -> Self:
        """A private in-memory store, migrated to the current schema (for tests and demos)."""
        conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        return cls._setup(conn, ":memory:", DEFAULT_BUSY_TIMEOUT_MS, wal=False)

    @classmethod
    def _setup(cls, conn: sqlite3.Connection, path: str, busy_ms: int, wal: bool) -> Self:
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(busy_ms)}")
            if wal:
                mode = _switch_to_wal(conn, busy_ms)
                if str(mode).lower() != "wal":
                    raise StoreError(f"store {path} cannot use WAL journaling (got {mode})")
            conn.execute("PRAGMA foreign_keys = ON")
            # FULL, not NORMAL: a committed "executing" must survive a power cut, or a restart
            # could send the same orders again.
            conn.execute("PRAGMA synchronous = FULL")
            store = cls(conn, path)
            migrate(store._db, path)
            return store
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise StoreError(
                f"cannot open the store {path}: {exc}. If this file is not a Premia store, move"
                " it aside or set store_path to another file (a fresh store is created there)."
            ) from None
        except BaseException:
            conn.close()
            raise

    def close(self) -> None:
        """Close the connection; later calls raise StoreError."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def schema_version(self) -> int:
        """The schema version of the open file."""
        with self._read() as db:
            return schema_version(db)

    def journal_mode(self) -> str:
        with self._read() as db:
            return str(db.execute("PRAGMA journal_mode").fetchone()[0]).lower()

    # ── transactions ───────────────────────────────────────────────────────────────────────

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE … COMMIT (ROLLBACK on error); store calls inside join it.

        Nested blocks become savepoints. Never `await` inside: the connection is shared, and
        another task using the store meanwhile gets a StoreError instead of joining it.
        """
        with self._write():
            yield

    @contextmanager
    def _write(self) -> Iterator[Database]:
        """A write transaction, or a savepoint inside the caller's transaction."""
        self._enter()
        try:
            if self._depth == 0:
                self._begin()
                self._tx_owner = _owner()
                self._depth = 1
                try:
                    yield self._db
                except BaseException:
                    self._finish("ROLLBACK")
                    raise
                else:
                    self._finish("COMMIT")
            else:
                name = f"premia_sp_{self._depth}"
                self._conn.execute(f"SAVEPOINT {name}")
                self._depth += 1
                try:
                    yield self._db
                except BaseException:
                    self._depth -= 1
                    if self._conn.in_transaction:
                        self._conn.execute(f"ROLLBACK TO SAVEPOINT {name}")
                        self._conn.execute(f"RELEASE SAVEPOINT {name}")
                    raise
                else:
                    self._depth -= 1
                    self._conn.execute(f"RELEASE SAVEPOINT {name}")
        finally:
            self._lock.release()

    @contextmanager
    def _read(self) -> Iterator[Database]:
        """Exclusive use of the connection for a read (inside the caller's transaction if any)."""
        self._enter()
        try:
            yield self._db
        finally:
            self._lock.release()

    def _enter(self) -> None:
        self._lock.acquire()
        if self._closed:
            self._lock.release()
            raise StoreError(f"store {self.path} is closed")
        if self._depth and self._tx_owner != _owner():
            self._lock.release()
            raise StoreError(
                "another asyncio task holds an open store transaction; do not await inside"
                " store.transaction()"
            )

    def _begin(self) -> None:
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise StoreError(
                f"store {self.path} is busy ({exc}); another process kept it locked too long"
            ) from None

    def _finish(self, verb: str) -> None:
        self._depth = 0
        self._tx_owner = None
        if self._conn.in_transaction:
            if verb == "COMMIT":
                try:
                    self._conn.execute("COMMIT")
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
            else:
                self._conn.execute("ROLLBACK")

    # ── row helpers ────────────────────────────────────────────────────────────────────────

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Run a SELECT and return every row as a dict."""
        with self._read() as db:
            cursor = db.execute(sql, list(params))
            keys = [d[0] for d in cursor.description]
            return [dict(zip(keys, row, strict=True)) for row in cursor.fetchall()]

    def _one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        rows = self._rows(sql, params)
        return rows[0] if rows else None
