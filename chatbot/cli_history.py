"""`premia history fetch|import`: market history into the store, for backtests and offline runs.

    premia history fetch --since 2024-01-01 [--until DATE] [--assets BTC,ETH] [--config FILE]
        settled funding and daily candles from each asset's exchange, and Fear & Greed. Paged
        forward, ccxt's rate limiter on, one exchange's series one after another; every page is
        stored with the point it reached, so a second run continues where the first stopped.
    premia history import PATH [--since DATE] [--until DATE] [--assets …] [--exchange …]
        CSV files in the formats of ../shared/data/derived (a file, or a folder of them).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.config import Settings, load_settings
from core.errors import ConfigError, FeedError

if TYPE_CHECKING:
    from rich.progress import Progress

    from core.feeds.clients import ExchangeClients
    from core.store import Store

DAY_MS = 86_400_000
PROGRESS_FLAG = "history_fetch:{exchange}:{kind}:{symbol}"
RESUME_HINT = "run the same command again to continue where it stopped"


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date; use YYYY-MM-DD") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    fetch = actions.add_parser("fetch", help="download funding, daily candles and Fear & Greed")
    fetch.add_argument("--since", type=_day, required=True, help="first day (UTC), YYYY-MM-DD")
    fetch.add_argument("--until", type=_day, default=None, help="last day (UTC), default today")
    fetch.add_argument("--assets", default=None, help="comma-separated assets (default: the config's)")
    fetch.add_argument("--page-size", type=int, default=None,
                       help="rows per request (default: the exchange's maximum)")
    fetch.add_argument("--config", type=Path, default=None, help="config file")
    imp = actions.add_parser("import", help="load CSV history (formats of shared/data/derived)")
    imp.add_argument("path", type=Path, help="a CSV file, or a folder of them (or its derived/)")
    imp.add_argument("--since", type=_day, default=None, help="first day to keep")
    imp.add_argument("--until", type=_day, default=None, help="last day to keep")
    imp.add_argument("--assets", default=None, help="comma-separated assets (default: all in the files)")
    imp.add_argument("--exchange", default=None, help="funding of these exchanges only (comma-separated)")
    imp.add_argument("--config", type=Path, default=None, help="config file (for the store path)")


def _names(text: str | None) -> list[str] | None:
    return [n.strip().upper() for n in text.split(",") if n.strip()] if text else None


def run(args: argparse.Namespace) -> int:
    if getattr(args, "action", None) is None:
        print("premia history: say what to do: fetch --since DATE, or import PATH", file=sys.stderr)
        return 2
    settings = load_settings(args.config)
    from core.store import Store

    with Store.open(settings.db_path) as store:
        if args.action == "import":
            return run_import(store, args)
        return asyncio.run(run_fetch(settings, store, args))


# ── import ──────────────────────────────────────────────────────────────────────────────────


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FeedError(f"{path} does not exist; give a CSV file or the folder that holds them")
    folder = path / "derived" if (path / "derived").is_dir() else path
    found = sorted(folder.glob("*.csv"))
    if not found:
        raise FeedError(f"no CSV files in {folder}")
    return found


def import_file(store: Store, path: Path, *, assets: Sequence[str] | None, exchanges: Sequence[str] | None,
                since: date | None, until: date | None) -> tuple[str, int, date | None, date | None]:
    """Load one derived CSV into the store: (kind, rows stored, first day, last day)."""
    from core.history_csv import detect_kind, read_fear_greed, read_funding, read_prices
    from core.models import base_asset

    def keep(day: date) -> bool:
        return (since is None or day >= since) and (until is None or day <= until)

    kind = detect_kind(path)
    days: list[date] = []
    with store.transaction():
        if kind == "prices":
            closes = [(a, d, c) for a, d, c in read_prices(path, assets) if keep(d)]
            store.upsert_closes(closes)
            days, count = [d for _, d, _ in closes], len(closes)
        elif kind == "funding":
            wanted = {a.upper() for a in assets} if assets else None
            rows = [r for r in read_funding(path)
                    if keep(r[2].date()) and (exchanges is None or r[0] in exchanges)
                    and (wanted is None or base_asset(r[1]) in wanted)]
            store.upsert_funding(rows)
            days, count = [r[2].date() for r in rows], len(rows)
        elif kind == "fear_greed":
            fg = [r for r in read_fear_greed(path) if keep(r[0])]
            store.upsert_fear_greed(fg)
            days, count = [r[0] for r in fg], len(fg)
        else:  # basis: backtests read perpetual closes from the file itself
            count = 0
    return kind, count, min(days, default=None), max(days, default=None)


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    tty = (sys.stderr if stderr else sys.stdout).isatty()
    return Console(stderr=stderr, highlight=False, width=None if tty else 120)


def run_import(store: Store, args: argparse.Namespace) -> int:
    from rich.table import Table

    console = _console()
    assets = _names(args.assets)
    exchanges = [e.strip().lower() for e in args.exchange.split(",")] if args.exchange else None
    table = Table(title="Imported into " + str(store.path))
    for col in ("file", "kind", "rows", "first", "last"):
        table.add_column(col)
    failed = 0
    for path in _files(args.path):
        try:
            with console.status(f"importing {path.name}…"):
                kind, count, first, last = import_file(store, path, assets=assets, exchanges=exchanges,
                                                       since=args.since, until=args.until)
        except FeedError as exc:
            failed += 1
            console.print(f"[yellow]skipped[/yellow] {exc}")
            continue
        note = "skipped (backtests read it from the file)" if kind == "basis" else str(count)
        table.add_row(path.name, kind, note, str(first or "-"), str(last or "-"))
    console.print(table)
    return 1 if failed else 0


# ── fetch ───────────────────────────────────────────────────────────────────────────────────


@dataclass
class SeriesResult:
    name: str
    rows: int = 0
    first: datetime | None = None
    last: datetime | None = None
    error: str | None = None


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def _dt(ms: int | float) -> datetime:
    return datetime.fromtimestamp(int(ms) / 1000, UTC)


def _dec(x: Any) -> Decimal:
    return Decimal(str(x)) if x not in (None, "") else Decimal(0)


class HistoryFetcher:
    """Pages one series at a time forward from its stored progress, storing each page at once."""

    def __init__(self, settings: Settings, store: Store, clients: ExchangeClients, since: datetime,
                 until: datetime, *, page_size: int | None = None, progress: Progress | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.settings, self.store, self.clients = settings, store, clients
        self.since_ms, self.until_ms = _ms(since), _ms(until)
        self.page_size = page_size
        self.progress = progress
        self.clock = clock

    async def _call(self, fn: Callable[[], Awaitable[Any]]) -> Any:
        from core.feeds.retry import retrying

        async def attempt() -> Any:  # tenacity runs a plain lambda as a sync function
            return await fn()

        return await retrying(self.settings.feeds.retries)(attempt)

    def _limit(self, client: Any) -> int:
        from core.feeds.poll_requests import _PAGE_LIMITS

        return self.page_size or _PAGE_LIMITS.get(client.id, 100)

    async def pages(self, label: str, flag: str, fetch: Callable[[int, int], Awaitable[Any]],
                    time_of: Callable[[Any], int], keep: Callable[[list[Any]], None], limit: int,
                    done_before: int | None = None) -> SeriesResult:
        """Page forward from the stored cursor (or `since`); each page and the cursor in one transaction."""
        result = SeriesResult(label)
        saved = self.store.get_flag(flag) or {}
        start, cursor = self.since_ms, self.since_ms
        if saved.get("since", self.since_ms + 1) <= self.since_ms and saved.get("cursor", 0) > cursor:
            start, cursor = int(saved["since"]), int(saved["cursor"])  # continue the earlier run
        end = min(self.until_ms, done_before or self.until_ms)
        task = self.progress.add_task(label, total=max(1, end - self.since_ms)) if self.progress else None
        try:
            while cursor <= end:
                page = await self._call(lambda c=cursor: fetch(c, limit))
                if not isinstance(page, list):
                    raise FeedError(f"{label}: the exchange's answer is not a list")
                rows = sorted((r for r in page if cursor <= time_of(r) <= end), key=time_of)
                if not rows:
                    break
                newest = time_of(rows[-1])
                with self.store.transaction():
                    keep(rows)
                    cursor = newest + 1
                    self.store.set_flag(flag, {"since": start, "cursor": cursor}, self.clock())
                result.rows += len(rows)
                result.first = result.first or _dt(time_of(rows[0]))
                result.last = _dt(newest)
                if self.progress is not None and task is not None:
                    self.progress.update(task, completed=min(end, cursor) - self.since_ms)
                if len(page) < limit:
                    break
        except Exception as exc:
            from core.feeds.retry import describe

            result.error = str(exc) if isinstance(exc, FeedError) else describe(exc)
        if self.progress is not None and task is not None and result.error is None:
            self.progress.update(task, completed=max(1, end - self.since_ms))
        return result

    async def funding(self, name: str, asset: str, symbol: str) -> SeriesResult:
        client = self.clients.futures(name)
        if symbol not in client.markets:
            return SeriesResult(f"{name} {symbol} funding", error=f"{symbol} is not listed on {client.id}")

        def keep(rows: list[Any]) -> None:
            self.store.upsert_funding([(name, symbol, _dt(r["timestamp"]), _dec(r["fundingRate"]))
                                       for r in rows if r.get("fundingRate") is not None])

        flag = PROGRESS_FLAG.format(exchange=name, kind="funding", symbol=symbol)
        return await self.pages(f"{name} {symbol} funding", flag,
                                lambda c, n: client.fetch_funding_rate_history(symbol, c, n),
                                lambda r: int(r.get("timestamp") or 0), keep, self._limit(client),
                                _ms(self.clock()))

    async def candles(self, name: str, asset: str, symbol: str) -> SeriesResult:
        client = self.clients.spot(name)
        if symbol not in client.markets:
            return SeriesResult(f"{name} {symbol} daily", error=f"{symbol} is not listed on {client.id}")

        def keep(rows: list[Any]) -> None:
            self.store.upsert_ohlcv([(name, symbol, "1d", _dt(r[0]), *(_dec(x) for x in r[1:6]))
                                     for r in rows])
            self.store.upsert_closes([(asset, _dt(r[0]).date(), _dec(r[4])) for r in rows])

        # Only finished days: today's candle is still moving.
        today = _ms(datetime.combine(self.clock().date(), time(), UTC))
        flag = PROGRESS_FLAG.format(exchange=name, kind="1d", symbol=symbol)
        return await self.pages(f"{name} {symbol} daily", flag,
                                lambda c, n: client.fetch_ohlcv(symbol, "1d", c, n),
                                lambda r: int(r[0]), keep, self._limit(client), today - 1)

    async def exchange(self, name: str, assets: list[str]) -> list[SeriesResult]:
        try:
            await self._call(lambda: self.clients.load_markets(name))
        except Exception as exc:
            from core.feeds.retry import describe

            return [SeriesResult(f"{name} markets", error=describe(exc))]
        out = []
        for asset in assets:  # one series after another: the exchange's rate limit is shared
            perp = self.settings.perp_symbol(asset)
            if perp and asset not in self.settings.stablecoins:
                out.append(await self.funding(name, asset, perp))
            out.append(await self.candles(name, asset, self.settings.spot_symbol(asset)))
        return out

    async def fear_greed(self) -> SeriesResult:
        from core.feeds.fear_greed import fetch_fear_greed

        result = SeriesResult("alternative.me Fear & Greed")
        feeds = self.settings.feeds
        days = (self.clock() - _dt(self.since_ms)).days + 2
        try:
            fg = await fetch_fear_greed(feeds.fear_greed_url, max(1, days), feeds.timeout_seconds)
        except FeedError as exc:
            result.error = str(exc)
            return result
        lo, hi = _dt(self.since_ms).date(), _dt(self.until_ms).date()
        rows = [(d, v) for d, v in fg.history if lo <= d <= hi]
        self.store.upsert_fear_greed(rows)
        result.rows = len(rows)
        if rows:
            result.first = datetime.combine(rows[0][0], time(), UTC)
            result.last = datetime.combine(rows[-1][0], time(), UTC)
        return result


async def run_fetch(settings: Settings, store: Store, args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn
    from rich.table import Table

    from core.feeds.clients import ExchangeClients

    now = datetime.now(UTC)
    until_day = args.until or now.date()
    if until_day < args.since:
        raise ConfigError(f"--until {until_day} is before --since {args.since}")
    since = datetime.combine(args.since, time(), UTC)
    until = min(now, datetime.combine(until_day + timedelta(days=1), time(), UTC) - timedelta(milliseconds=1))
    wanted = _names(args.assets) or [a for a in settings.assets if a != settings.quote]
    unknown = [a for a in wanted if a not in settings.assets]
    if unknown:
        raise ConfigError(f"--assets: {', '.join(unknown)} not in the config's [assets]")
    by_exchange: dict[str, list[str]] = {}
    for asset in wanted:
        by_exchange.setdefault(settings.assets[asset].exchange, []).append(asset)
    console = _console(stderr=True)
    columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeRemainingColumn())
    async with ExchangeClients(settings) as clients:  # ccxt's rate limiter stays on
        with Progress(*columns, console=console, transient=False) as progress:
            fetcher = HistoryFetcher(settings, store, clients, since, until, page_size=args.page_size,
                                     progress=progress)
            parts = await asyncio.gather(fetcher.fear_greed(),
                                         *(fetcher.exchange(n, a) for n, a in by_exchange.items()))
    results = [parts[0], *(r for part in parts[1:] for r in part)]
    table = Table(title=f"History in {store.path}")
    for col in ("series", "rows", "from", "to", "status"):
        table.add_column(col)
    for r in results:
        table.add_row(r.name, str(r.rows), f"{r.first:%Y-%m-%d %H:%M}" if r.first else "-",
                      f"{r.last:%Y-%m-%d %H:%M}" if r.last else "-",
                      f"failed: {r.error}" if r.error else "ok")
    _console().print(table)
    failed = [r for r in results if r.error]
    if failed:
        print(f"premia history fetch: {len(failed)} series stopped early; {RESUME_HINT}.", file=sys.stderr)
        return 1
    return 0
