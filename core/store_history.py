"""Market history for backtests and offline runs: funding, closes, OHLCV, Fear & Greed.

Every write is an idempotent upsert keyed by series and time, so re-importing a file or
re-fetching an overlapping window never duplicates a row.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from core.codec import day_from, day_to_str, dec_from, dec_to_str, dt_from, dt_to_str
from core.models import fear_greed_label
from core.store_base import StoreBase

FundingRow = tuple[str, str, datetime, Decimal]
CloseRow = tuple[str, date, Decimal]
OhlcvRow = tuple[str, str, str, datetime, Decimal, Decimal, Decimal, Decimal, Decimal]
FearGreedRow = tuple[date, int, str]

_LOW, _HIGH = "", "\uffff"  # open ends of a text range: before and after every ISO string


def _range(since: Any, until: Any, to_str: Any) -> tuple[str, str]:
    return (_LOW if since is None else to_str(since), _HIGH if until is None else to_str(until))


class HistoryMixin(StoreBase):
    """Series of market history; ranges are inclusive and None leaves an end open."""

    def upsert_funding(self, rows: Iterable[FundingRow]) -> int:
        """Insert or update settled funding prints (exchange, symbol, time, rate); returns the count."""
        data = [(ex, sym, dt_to_str(t), dec_to_str(rate)) for ex, sym, t, rate in rows]
        with self._write() as db:
            db.conn.executemany(
                "INSERT INTO funding (exchange, symbol, time, rate) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (exchange, symbol, time) DO UPDATE SET rate = excluded.rate",
                data,
            )
        return len(data)

    def funding_history(
        self,
        symbol: str,
        since: datetime | None,
        until: datetime | None,
        exchange: str | None = None,
    ) -> list[tuple[datetime, Decimal]]:
        """(time, rate) by time; without `exchange`, prints of every exchange are merged."""
        lo, hi = _range(since, until, dt_to_str)
        sql = "SELECT time, rate FROM funding WHERE symbol = ? AND time >= ? AND time <= ?"
        params: list[Any] = [symbol, lo, hi]
        if exchange is not None:
            sql += " AND exchange = ?"
            params.append(exchange)
        rows = self._rows(sql + " ORDER BY time, exchange", params)
        return [(dt_from(r["time"]), dec_from(r["rate"])) for r in rows]

    def latest_funding_time(self, exchange: str, symbol: str) -> datetime | None:
        row = self._one(
            "SELECT MAX(time) AS t FROM funding WHERE exchange = ? AND symbol = ?",
            [exchange, symbol],
        )
        return None if row is None or row["t"] is None else dt_from(row["t"])

    def upsert_closes(self, rows: Iterable[CloseRow]) -> int:
        """Insert or update daily closes (asset, day, close); returns the count."""
        data = [(asset, day_to_str(day), dec_to_str(close)) for asset, day, close in rows]
        with self._write() as db:
            db.conn.executemany(
                "INSERT INTO closes (asset, day, close) VALUES (?, ?, ?)"
                " ON CONFLICT (asset, day) DO UPDATE SET close = excluded.close",
                data,
            )
        return len(data)

    def closes(self, asset: str, since: date | None, until: date | None) -> list[tuple[date, Decimal]]:
        lo, hi = _range(since, until, day_to_str)
        rows = self._rows(
            "SELECT day, close FROM closes WHERE asset = ? AND day >= ? AND day <= ? ORDER BY day",
            [asset, lo, hi],
        )
        return [(day_from(r["day"]), dec_from(r["close"])) for r in rows]

    def latest_close_day(self, asset: str) -> date | None:
        row = self._one("SELECT MAX(day) AS d FROM closes WHERE asset = ?", [asset])
        return None if row is None or row["d"] is None else day_from(row["d"])

    def upsert_ohlcv(self, rows: Iterable[OhlcvRow]) -> int:
        """Insert or update candles (exchange, symbol, timeframe, time, o, h, l, c, volume)."""
        data = [
            (ex, sym, tf, dt_to_str(t), *(dec_to_str(v) for v in (o, h, low, c, vol)))
            for ex, sym, tf, t, o, h, low, c, vol in rows
        ]
        with self._write() as db:
            db.conn.executemany(
                "INSERT INTO ohlcv (exchange, symbol, timeframe, time, open, high, low, close,"
                " volume) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (exchange, symbol, timeframe, time) DO UPDATE SET"
                " open = excluded.open, high = excluded.high, low = excluded.low,"
                " close = excluded.close, volume = excluded.volume",
                data,
            )
        return len(data)

    def ohlcv(
        self,
        exchange: str,
        symbol: str,
        timeframe: str,
        since: datetime | None,
        until: datetime | None,
    ) -> list[tuple[datetime, Decimal, Decimal, Decimal, Decimal, Decimal]]:
        """(time, open, high, low, close, volume) by time."""
        lo, hi = _range(since, until, dt_to_str)
        rows = self._rows(
            "SELECT time, open, high, low, close, volume FROM ohlcv WHERE exchange = ?"
            " AND symbol = ? AND timeframe = ? AND time >= ? AND time <= ? ORDER BY time",
            [exchange, symbol, timeframe, lo, hi],
        )
        return [
            (
                dt_from(r["time"]),
                dec_from(r["open"]),
                dec_from(r["high"]),
                dec_from(r["low"]),
                dec_from(r["close"]),
                dec_from(r["volume"]),
            )
            for r in rows
        ]

    def upsert_fear_greed(self, rows: Iterable[FearGreedRow | tuple[date, int]]) -> int:
        """Insert or update daily index values (day, value, label); a missing label is derived."""
        data = [
            (day_to_str(r[0]), int(r[1]), r[2] if len(r) > 2 else fear_greed_label(int(r[1]))) for r in rows
        ]
        with self._write() as db:
            db.conn.executemany(
                "INSERT INTO fear_greed (day, value, label) VALUES (?, ?, ?)"
                " ON CONFLICT (day) DO UPDATE SET value = excluded.value, label = excluded.label",
                data,
            )
        return len(data)

    def fear_greed_history(self, since: date | None, until: date | None) -> list[tuple[date, int]]:
        lo, hi = _range(since, until, day_to_str)
        rows = self._rows(
            "SELECT day, value FROM fear_greed WHERE day >= ? AND day <= ? ORDER BY day", [lo, hi]
        )
        return [(day_from(r["day"]), int(r["value"])) for r in rows]

    def history_coverage(self) -> dict[str, Any]:
        """Row count, first and last time of every stored series, for `premia history` reports."""
        funding = self._rows(
            "SELECT exchange, symbol, COUNT(*) AS count, MIN(time) AS first, MAX(time) AS last"
            " FROM funding GROUP BY exchange, symbol ORDER BY exchange, symbol"
        )
        closes = self._rows(
            "SELECT asset, COUNT(*) AS count, MIN(day) AS first, MAX(day) AS last"
            " FROM closes GROUP BY asset ORDER BY asset"
        )
        ohlcv = self._rows(
            "SELECT exchange, symbol, timeframe, COUNT(*) AS count, MIN(time) AS first,"
            " MAX(time) AS last FROM ohlcv GROUP BY exchange, symbol, timeframe"
            " ORDER BY exchange, symbol, timeframe"
        )
        fg = self._one("SELECT COUNT(*) AS count, MIN(day) AS first, MAX(day) AS last FROM fear_greed")
        return {
            "funding": [{**r, "first": dt_from(r["first"]), "last": dt_from(r["last"])} for r in funding],
            "closes": [{**r, "first": day_from(r["first"]), "last": day_from(r["last"])} for r in closes],
            "ohlcv": [{**r, "first": dt_from(r["first"]), "last": dt_from(r["last"])} for r in ohlcv],
            "fear_greed": None
            if fg is None or not fg["count"]
            else {"count": fg["count"], "first": day_from(fg["first"]), "last": day_from(fg["last"])},
        }
