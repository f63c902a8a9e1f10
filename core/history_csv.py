"""Readers for the derived history CSVs (see data/SOURCES.md, "Derived files"), and `HistoryFrame`.

The readers stream typed tuples (Decimal values, UTC datetimes) and raise `FeedError` naming the
file, line and column of a malformed row. `load_history` keeps only the requested assets and
date range in memory. The data folder is `$PREMIA_SHARED_DATA` or `<repo>/../shared/data`.
"""

from __future__ import annotations

import csv
import os
from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import MappingProxyType

from core.errors import FeedError
from core.models import Close, FundingPrint, base_asset, fear_greed_label

SHARED_DATA_ENV = "PREMIA_SHARED_DATA"
PRICES_FILE = "prices_daily_clean.csv"
FUNDING_FILE = "funding_rates_clean.csv"
FEAR_GREED_FILE = "fear_greed_daily_clean.csv"
BASIS_FILE = "perp_spot_basis_daily.csv"

# Header (first columns) → kind. Only the leading columns are compared so that an extra trailing
# column added later does not break detection.
HEADERS: dict[str, tuple[str, ...]] = {
    "prices": ("timestamp_utc", "symbol", "open", "high", "low", "close"),
    "funding": ("timestamp_utc", "exchange", "symbol", "funding_rate"),
    "fear_greed": ("timestamp_utc", "value", "classification"),
    "basis": ("timestamp_utc", "symbol", "spot_close", "perp_close", "basis_pct"),
}


def default_data_dir() -> Path:
    """`$PREMIA_SHARED_DATA`, else `<repo>/../shared/data`; the derived CSVs are in `derived/`."""
    env = os.environ.get(SHARED_DATA_ENV)
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


# ── low-level parsing ──────────────────────────────────────────────────────────────────────


class _Rows:
    """A csv reader over one file that knows where it is, so errors can name line and column."""

    def __init__(self, path: Path, kind: str) -> None:
        self.path = path
        self.kind = kind
        self.line = 1

    def __iter__(self) -> Iterator[list[str]]:
        expected = HEADERS[self.kind]
        try:
            fh = self.path.open(newline="", encoding="utf-8-sig")
        except OSError as exc:
            raise FeedError(f"cannot open history file {self.path}: {exc.strerror}") from None
        with fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None or tuple(header[: len(expected)]) != expected:
                raise FeedError(
                    f"{self.path}: line 1: expected a {self.kind} header starting with"
                    f" {','.join(expected)}, found {','.join(header or []) or 'an empty file'}"
                )
            for row in reader:
                self.line = reader.line_num
                if not row:
                    continue
                if len(row) < len(expected):
                    raise FeedError(
                        f"{self.path}: line {self.line}: {len(row)} columns, expected at least"
                        f" {len(expected)} ({','.join(expected)})"
                    )
                yield row

    def fail(self, column: str, value: str, what: str) -> FeedError:
        return FeedError(
            f"{self.path}: line {self.line}, column '{column}': {value!r} is not {what}"
        )

    def decimal(self, value: str, column: str) -> Decimal:
        try:
            number = Decimal(value)
        except InvalidOperation:
            raise self.fail(column, value, "a number") from None
        if not number.is_finite():
            raise self.fail(column, value, "a finite number")
        return number

    def moment(self, value: str, column: str = "timestamp_utc") -> datetime:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise self.fail(column, value, "an ISO-8601 UTC time (YYYY-MM-DDTHH:MM:SSZ)") from None
        if moment.utcoffset() != timedelta(0):
            raise self.fail(column, value, "in UTC (it must end in Z)")
        return moment.astimezone(UTC)

    def day(self, value: str, column: str = "timestamp_utc") -> date:
        return self.moment(value, column).date()


def detect_kind(path: Path) -> str:
    """Which derived file this is, by its header: "prices", "funding", "fear_greed" or "basis"."""
    try:
        with Path(path).open(newline="", encoding="utf-8-sig") as fh:
            header = tuple(next(csv.reader(fh), []))
    except OSError as exc:
        raise FeedError(f"cannot open history file {path}: {exc.strerror}") from None
    for kind, expected in HEADERS.items():
        if header[: len(expected)] == expected:
            return kind
    raise FeedError(f"{path}: line 1: unknown history header {','.join(header) or '(empty)'}")


# ── readers ─────────────────────────────────────────────────────────────────────────────────


def read_prices(
    path: Path, assets: Sequence[str] | None = None
) -> Iterator[tuple[str, date, Decimal]]:
    """Daily closes as (asset, day, close): "BTC/USDT" → "BTC". `assets` filters before parsing."""
    wanted = {a.upper() for a in assets} if assets is not None else None
    rows = _Rows(Path(path), "prices")
    for row in rows:
        asset = base_asset(row[1])
        if wanted is not None and asset not in wanted:
            continue
        close = rows.decimal(row[5], "close")
        if close <= 0:
            raise rows.fail("close", row[5], "a positive price")
        yield asset, rows.day(row[0]), close


def read_funding(
    path: Path, exchange: str | None = None, symbols: Sequence[str] | None = None
) -> Iterator[tuple[str, str, datetime, Decimal]]:
    """Funding prints as (exchange, ccxt symbol, UTC time, rate per interval), filtered cheaply."""
    wanted = set(symbols) if symbols is not None else None
    rows = _Rows(Path(path), "funding")
    for row in rows:
        if exchange is not None and row[1] != exchange:
            continue
        if wanted is not None and row[2] not in wanted:
            continue
        yield row[1], row[2], rows.moment(row[0]), rows.decimal(row[3], "funding_rate")


def read_fear_greed(path: Path) -> Iterator[tuple[date, int, str]]:
    """Fear & Greed as (day, value 0-100, label); a blank label (after 2025-12-03) is derived."""
    rows = _Rows(Path(path), "fear_greed")
    for row in rows:
        try:
            value = int(row[1])
        except ValueError:
            raise rows.fail("value", row[1], "an integer") from None
        if not 0 <= value <= 100:
            raise rows.fail("value", row[1], "within 0..100")
        yield rows.day(row[0]), value, row[2] or fear_greed_label(value)


def read_basis(path: Path) -> Iterator[tuple[str, date, Decimal, Decimal, Decimal]]:
    """Perp-vs-spot daily closes as (asset, day, spot, perp, basis); basis is a fraction, not %."""
    rows = _Rows(Path(path), "basis")
    for row in rows:
        spot = rows.decimal(row[2], "spot_close")
        perp = rows.decimal(row[3], "perp_close")
        if spot <= 0:
            raise rows.fail("spot_close", row[2], "a positive price")
        yield (
            base_asset(row[1]),
            rows.day(row[0]),
            spot,
            perp,
            rows.decimal(row[4], "basis_pct") / 100,
        )


# ── HistoryFrame ────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class HistoryFrame:
    """Daily closes aligned on `days` (None where an asset has no close), funding per perp symbol,
    and Fear & Greed per day. Built from files (`load_history`) or simulated (`simulate_history`).
    """

    days: tuple[date, ...]
    closes: Mapping[str, tuple[Decimal | None, ...]]
    funding: Mapping[str, tuple[FundingPrint, ...]]
    fear_greed: Mapping[date, int]
    source: str = "files"
    _times: Mapping[str, tuple[datetime, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for asset, column in self.closes.items():
            if len(column) != len(self.days):
                raise ValueError(
                    f"closes of {asset} have {len(column)} rows for {len(self.days)} days"
                )
        # Read-only views: a frozen frame shared between tasks must not be mutated through a dict.
        object.__setattr__(self, "closes", MappingProxyType(dict(self.closes)))
        object.__setattr__(self, "funding", MappingProxyType(dict(self.funding)))
        object.__setattr__(self, "fear_greed", MappingProxyType(dict(self.fear_greed)))
        # Print times kept once so that windowed look-ups bisect instead of scanning.
        times = {s: tuple(p.time for p in prints) for s, prints in self.funding.items()}
        object.__setattr__(self, "_times", times)

    @property
    def assets(self) -> tuple[str, ...]:
        return tuple(self.closes)

    @property
    def start(self) -> date | None:
        return self.days[0] if self.days else None

    @property
    def end(self) -> date | None:
        return self.days[-1] if self.days else None

    def close(self, asset: str, day: date) -> Decimal | None:
        """The close of `asset` on `day`, or None if that day is missing."""
        i = bisect_left(self.days, day)
        if i == len(self.days) or self.days[i] != day or asset not in self.closes:
            return None
        return self.closes[asset][i]

    def series(self, asset: str, until: date | None = None) -> tuple[Close, ...]:
        """The known closes of an asset up to and including `until`, oldest first."""
        column = self.closes.get(asset, ())
        stop = len(self.days) if until is None else bisect_right(self.days, until)
        return tuple(
            Close(d, p)
            for d, p in zip(self.days[:stop], column[:stop], strict=True)
            if p is not None
        )

    def perp_symbol(self, asset: str) -> str | None:
        """The funding symbol whose base is `asset` ("BTC" → "BTC/USDT:USDT"), if any."""
        return next((s for s in self.funding if base_asset(s) == asset.upper()), None)

    def funding_between(
        self, symbol: str, start: datetime, end: datetime
    ) -> tuple[FundingPrint, ...]:
        """Prints of `symbol` with start <= time < end (bisected: prints are sorted by time)."""
        prints = self.funding.get(symbol, ())
        times = self._times.get(symbol, ())
        return prints[bisect_left(times, start) : bisect_left(times, end)]

    def complete_days(self) -> tuple[date, ...]:
        """Days on which every asset has a close."""
        columns = list(self.closes.values())
        return tuple(d for i, d in enumerate(self.days) if all(c[i] is not None for c in columns))


def load_history(
    folder: Path,
    assets: Sequence[str],
    start: date,
    end: date,
    exchange: str = "binance",
    quote: str = "USDT",
) -> HistoryFrame:
    """Load closes, `exchange` funding and Fear & Greed for `assets` from start to end inclusive.

    `folder` is the data folder or its `derived/` subfolder.
    """
    if end < start:
        raise FeedError(f"history range is empty: end {end} is before start {start}")
    folder = Path(folder)
    derived = folder / "derived" if (folder / "derived").is_dir() else folder
    names = [a.upper() for a in assets]

    by_asset: dict[str, dict[date, Decimal]] = {a: {} for a in names}
    for asset, day, price in read_prices(derived / PRICES_FILE, names):
        if start <= day <= end:
            by_asset[asset][day] = price
    days = tuple(sorted({d for column in by_asset.values() for d in column}))
    closes = {a: tuple(by_asset[a].get(d) for d in days) for a in names}

    lo = datetime.combine(start, time(), UTC)
    hi = datetime.combine(end + timedelta(days=1), time(), UTC)
    wanted = [f"{a}/{quote}:{quote}" for a in names]
    prints: dict[str, list[FundingPrint]] = {}
    for _, symbol, moment, rate in read_funding(derived / FUNDING_FILE, exchange, wanted):
        if lo <= moment < hi:
            prints.setdefault(symbol, []).append(FundingPrint(moment, rate))
    funding = {s: tuple(sorted(p, key=lambda fp: fp.time)) for s, p in prints.items()}

    fear_greed = {
        d: v for d, v, _ in read_fear_greed(derived / FEAR_GREED_FILE) if start <= d <= end
    }
    return HistoryFrame(days, closes, funding, fear_greed, source=f"files:{exchange}")
