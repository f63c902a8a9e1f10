"""The recorded exchange payloads the loopback exchange serves, loaded once per process.

All under `$PREMIA_SHARED_DATA/raw`, see `data/SOURCES.md`:
- market lists: nautilus_trader's recorded Binance spot/futures `exchangeInfo` (with the quarterly
  `BTCUSDT_220325`), Bybit `instruments-info` and OKX `instruments`, each extended in code with
  clones of a recorded entry for every USDT perpetual in the Binance full-market `premiumIndex`
  snapshot (danghungithp, 2025-06-17), tick and lot sizes scaled to the price (`tick_size`,
  `lot_size`);
- prices and funding: that snapshot, overridden where an exchange's own recording exists (Bybit's
  BTCUSDT ticker from ccxt's static tests, OKX's BTC mark/index/funding from nautilus). The OKX
  recordings are weeks apart, so OKX BTC's mark and index disagree by design of the data;
- funding intervals: implied by the snapshot's `nextFundingTime` (e.g. WIFUSDT is 4h); Binance's
  `fundingInfo` (never recorded) is synthesized in Binance's documented format from them;
- settled funding and daily candles: `derived/` series (real rates and closes), which the server
  moves onto a grid that ends now (`FakeExchange.funding_history`, `FakeExchange.daily`).
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
WEEK_MS = 7 * DAY_MS

NAUTILUS = "raw/nautechsystems__nautilus_trader"
BINANCE_REC = f"{NAUTILUS}/tests/integration_tests/adapters/binance/resources/http_responses"
BYBIT_REC = f"{NAUTILUS}/crates/adapters/bybit/test_data"
OKX_REC = f"{NAUTILUS}/crates/adapters/okx/test_data"
CCXT_REC = "raw/ccxt__ccxt/ts/src/test/static/response_excerpts"
_PREMIUM_INDEX = "raw/danghungithp__funding-rate-binance-bot/premiumIndex.json"


class SharedDataMissing(RuntimeError):
    """The recorded payloads (`$PREMIA_SHARED_DATA`) are not on this machine."""


def shared_data_dir() -> Path:
    """$PREMIA_SHARED_DATA, else `<repo>/../shared/data`; raise SharedDataMissing when absent."""
    default = Path(__file__).resolve().parents[3] / "shared" / "data"
    path = Path(os.environ.get("PREMIA_SHARED_DATA", default))
    if not (path / _PREMIUM_INDEX).is_file() or not (path / "derived").is_dir():
        raise SharedDataMissing(f"recorded exchange payloads not found under {path}; set PREMIA_SHARED_DATA")
    return path


@dataclass(frozen=True)
class PerpState:
    """One USDT perpetual as the Binance snapshot saw it."""

    mark: str
    index: str
    funding_rate: str
    interval_h: int


@dataclass
class Recordings:
    root: Path
    anchor_ms: int  # the time the full-market snapshot was taken
    perps: dict[str, PerpState]  # by base asset
    quarterlies: dict[str, tuple[str, int]]  # snapshot id → (mark, delivery ms)
    funding: dict[tuple[str, str], list[str]]  # (exchange, base) → settled rates, oldest first
    closes: dict[str, list[tuple[date, list[str]]]]  # base → daily [o, h, l, c, v], oldest first

    def json(self, rel: str) -> Any:
        return _load_json(self.root / rel)


@cache
def _load_json(path: Path) -> Any:
    return json.loads(path.read_text())


def _implied_interval_h(time_ms: int, next_ms: int) -> int:
    """The funding interval that puts the next settlement where the snapshot says it is."""
    for hours in (1, 2, 4, 8):
        step = hours * HOUR_MS
        if (time_ms // step + 1) * step == next_ms:
            return hours
    return 8


@cache
def load_recordings(root: Path) -> Recordings:
    snapshot = _load_json(root / _PREMIUM_INDEX)
    anchor = max(int(e["time"]) for e in snapshot)
    perps: dict[str, PerpState] = {}
    quarterlies: dict[str, tuple[str, int]] = {}
    for e in snapshot:
        sym = e["symbol"]
        if "_" in sym:
            expiry = datetime.strptime(sym.split("_")[1], "%y%m%d").replace(hour=8, tzinfo=UTC)
            quarterlies[sym] = (e["markPrice"], int(expiry.timestamp() * 1000))
        elif sym.endswith("USDT") and int(e["nextFundingTime"]):
            interval = _implied_interval_h(int(e["time"]), int(e["nextFundingTime"]))
            perps[sym[:-4]] = PerpState(e["markPrice"], e["indexPrice"], e["lastFundingRate"], interval)
    funding: dict[tuple[str, str], list[str]] = defaultdict(list)
    with (root / "derived/funding_rates_clean.csv").open() as fh:
        for row in csv.DictReader(fh):
            if row["exchange"] in ("binance", "bybit") and row["symbol"].endswith("/USDT:USDT"):
                funding[(row["exchange"], row["symbol"].split("/")[0])].append(row["funding_rate"])
    closes: dict[str, list[tuple[date, list[str]]]] = defaultdict(list)
    with (root / "derived/prices_daily_clean.csv").open() as fh:
        for row in csv.DictReader(fh):
            day = date.fromisoformat(row["timestamp_utc"][:10])
            ohlcv = [row[k] for k in ("open", "high", "low", "close", "volume_base")]
            closes[row["symbol"].split("/")[0]].append((day, ohlcv))
    return Recordings(
        root, anchor, perps, quarterlies,
        {k: [f"{Decimal(r):.8f}" for r in v[-1000:]] for k, v in funding.items()},
        {k: sorted(v) for k, v in closes.items()},
    )


def _power_of_ten(exp: int) -> str:
    return f"{Decimal(1).scaleb(exp):f}"


def tick_size(price: str) -> str:
    """Price tick for a cloned market: about 5 significant digits, never coarser than 0.01."""
    return _power_of_ten(min(-2, math.floor(math.log10(float(price))) - 4))


def lot_size(price: str) -> str:
    """Quantity step for a cloned market: one step is worth between 0.1 and 1 quote units."""
    return _power_of_ten(-(math.floor(math.log10(float(price))) + 1))

