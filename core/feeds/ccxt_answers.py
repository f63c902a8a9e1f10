"""Reading ccxt's answers: numbers and times, ticker prices, funding prints and intervals.

Pure functions, no requests: a poll (`core.feeds.exchange`) and its requests (`core.feeds.quotes`)
turn what ccxt hands back into the values of `core.models`. Prices are `Decimal`s made from ccxt's
numbers via `str`.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from core.feeds.retry import MalformedResponse
from core.models import FundingPrint


def dec(value: Any) -> Decimal | None:
    """ccxt number (float, int or str) → Decimal via str, so 0.1 stays 0.1; None stays None."""
    return None if value is None or value == "" else Decimal(str(value))


def ms_to_dt(ms: int | float) -> datetime:
    return datetime.fromtimestamp(int(ms) / 1000, UTC)


def dt_to_ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def not_json(answer: Any, what: str) -> None:
    """ccxt hands a body that is not JSON through as `info`: name that, not a missing field."""
    if isinstance(answer, dict) and isinstance(answer.get("info"), str):
        raise MalformedResponse(f"{what}: the answer is not the JSON expected ({answer['info'][:60]!r})")


def ticker_price(ticker: Any) -> Decimal | None:
    """Last trade, else close, else the bid/ask midpoint; None when the ticker has none."""
    if not isinstance(ticker, dict):
        return None
    for key in ("last", "close"):
        value = dec(ticker.get(key))
        if value is not None and value > 0:
            return value
    bid, ask = dec(ticker.get("bid")), dec(ticker.get("ask"))
    if bid and ask and bid > 0 and ask > 0:
        return (bid + ask) / 2
    return None


def funding_prints(rows: Any, after: datetime | None, now: datetime) -> tuple[FundingPrint, ...]:
    """ccxt funding-rate history → settled prints after `after` (exclusive), oldest first."""
    if not isinstance(rows, list):
        raise MalformedResponse("funding history is not a list")
    prints = {}
    for row in rows:
        stamp, rate = row.get("timestamp"), dec(row.get("fundingRate"))
        if stamp is None or rate is None:
            continue
        when = ms_to_dt(stamp)
        if when <= now and (after is None or when > after):
            prints[when] = rate
    return tuple(FundingPrint(t, r) for t, r in sorted(prints.items()))


def parse_interval(value: Any) -> Decimal | None:
    """ccxt's interval ("8h", "4h", "30m") → hours; None when absent or not positive."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([mhd])", str(value or "").strip())
    if not match:
        return None
    amount = Decimal(match[1])
    hours = amount / 60 if match[2] == "m" else amount * (24 if match[2] == "d" else 1)
    return hours if hours > 0 else None


def next_funding_time(rate_info: dict, now: datetime) -> datetime | None:
    """The next settlement: exchanges put it in fundingTimestamp or, for OKX, both fields."""
    stamps = [rate_info.get(k) for k in ("fundingTimestamp", "nextFundingTimestamp")]
    upcoming = [ms_to_dt(s) for s in stamps if s and ms_to_dt(s) > now]
    return min(upcoming) if upcoming else None


def funding_interval(symbol: str, rate_info: dict, intervals: Mapping[str, Decimal],
                     history: tuple[FundingPrint, ...], next_time: datetime | None,
                     previous: datetime | None = None) -> Decimal | None:
    """The symbol's own interval as the exchange states it, else from its settlement times
    (`previous`: the last settlement already held); None when nothing tells."""
    stated = parse_interval(rate_info.get("interval")) or intervals.get(symbol)
    if stated:
        return stated
    settled = [p.time for p in history]
    if previous is not None and previous.minute == previous.second == 0:  # settlements are on the hour
        settled = sorted({previous, *settled})
    times = settled[-2:] + ([next_time] if next_time else [])
    # The smallest gap: a settlement not yet published doubles the other gap, a new shorter
    # interval shows first in the newest gap.
    gaps = [Decimal((b - a).total_seconds()) / 3600 for a, b in itertools.pairwise(times)]
    gaps = [g.quantize(Decimal("0.01")) for g in gaps if 0 < g <= 24]
    return min(gaps).normalize() if gaps else None

