"""Where backtests and the demo get their history: the store, CSV files, or a simulated market.

This is the I/O edge of the backtest (the engine itself is pure). Each loader returns the
`HistoryFrame` with a plain-language description of its source, so callers can say which one
they used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

from core.config import Settings
from core.errors import FeedError
from core.history_csv import FUNDING_FILE, PRICES_FILE, HistoryFrame, default_data_dir, load_history
from core.models import FundingPrint
from core.replay import load_perp_closes
from core.simulated_market import simulate_history

SIMULATION_SEED = 2021


@dataclass(frozen=True, slots=True)
class History:
    """A frame, what it is in plain words, and the perpetual closes when the files have them."""

    frame: HistoryFrame
    description: str
    perp_closes: dict[str, dict[date, Decimal]] | None = None


def csv_folder(folder: Path) -> Path | None:
    """The folder holding the derived CSVs (itself or its `derived/`), or None."""
    for candidate in (folder / "derived", folder):
        if (candidate / PRICES_FILE).is_file() and (candidate / FUNDING_FILE).is_file():
            return candidate
    return None


def from_csv(folder: Path, assets: Sequence[str], start: date, end: date, exchange: str = "binance",
             quote: str = "USDT") -> History:
    """History from CSV files in the formats of shared/data/derived."""
    found = csv_folder(Path(folder))
    if found is None:
        raise FeedError(f"no history CSVs ({PRICES_FILE}, {FUNDING_FILE}) in {folder}; pass --data "
                        "with the folder that holds them")
    frame = load_history(found, assets, start, end, exchange=exchange, quote=quote)
    perp = load_perp_closes(found, assets, start, end)
    return History(frame, f"CSV history in {found}", perp)


def from_store(db_path: Path, assets: Sequence[str], start: date, end: date,
               quote: str = "USDT") -> History | None:
    """History from the store's closes, funding and Fear & Greed tables; None if it has none."""
    if not Path(db_path).is_file():
        return None
    from core.store import Store  # only when there is a store file to read

    with Store.open(db_path) as store:
        closes = {a: dict(store.closes(a, start, end)) for a in assets}
        if not all(closes.values()):
            return None
        lo = datetime.combine(start, time(), UTC)
        hi = datetime.combine(end + timedelta(days=1), time(), UTC) - timedelta(microseconds=1)
        funding = {}
        for a in assets:
            symbol = f"{a}/{quote}:{quote}"
            # One print per settlement time: the store may hold several exchanges' prints.
            prints = {t: r for t, r in reversed(store.funding_history(symbol, lo, hi))}
            if prints:
                funding[symbol] = tuple(FundingPrint(t, r) for t, r in sorted(prints.items()))
        fear_greed = dict(store.fear_greed_history(start, end))
    days = tuple(sorted({d for c in closes.values() for d in c}))
    frame = HistoryFrame(days, {a: tuple(closes[a].get(d) for d in days) for a in assets}, funding,
                         fear_greed, source="store")
    return History(frame, f"history from the store {db_path}")


def simulated(assets: Sequence[str], start: date, end: date, seed: int = SIMULATION_SEED) -> History:
    """A seeded synthetic market (core/simulated_market.py documents the model)."""
    frame = simulate_history(assets, start, (end - start).days + 1, seed)
    return History(frame, f"a simulated market (regime-switching GBM with Binance-like funding, "
                          f"seed {seed}; see core/simulated_market.py) — not real prices")


def find_history(settings: Settings, assets: Sequence[str], start: date, end: date,
                 data_dir: Path | None = None, *, allow_simulated: bool = False) -> History:
    """The first history that covers the assets: --data, the store, history_dir, shared data.

    With `allow_simulated`, a simulated market when nothing else is there; otherwise FeedError.
    """
    exchange = settings.assets[assets[0]].exchange if assets and assets[0] in settings.assets else "binance"
    if data_dir is not None:
        if not Path(data_dir).exists():
            raise FeedError(f"data folder {data_dir} does not exist")
        return from_csv(Path(data_dir), assets, start, end, exchange, settings.quote)
    stored = from_store(settings.db_path, assets, start, end, settings.quote)
    if stored is not None:
        return stored
    for folder in (settings.history_dir, default_data_dir()):
        if folder is not None and csv_folder(Path(folder)) is not None:
            return from_csv(Path(folder), assets, start, end, exchange, settings.quote)
    if allow_simulated:
        return simulated(assets, start, end)
    raise FeedError(
        "no market history found: not in the store, not in history_dir, not in "
        f"{default_data_dir()}; run `premia history import PATH` or pass --data DIR")
