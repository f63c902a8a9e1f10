"""The Crypto Fear & Greed Index from alternative.me (`GET /fng/?limit=N`).

The API answers `{"name": …, "data": [{"value": "47", "value_classification": "Neutral",
"timestamp": "1745280000", …}, …], "metadata": {"error": null}}`: values and unix-second times are
strings, newest first. alternative.me asks that the index be credited where it is shown.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import aiohttp

from core.errors import FeedError
from core.models import FearGreed

FEAR_GREED_ATTRIBUTION = "Fear & Greed Index by alternative.me"


def _entry(raw: Any) -> tuple[datetime, int]:
    if not isinstance(raw, dict):
        raise FeedError(f"Fear & Greed entry is not an object: {raw!r:.80}")
    try:
        value = int(str(raw["value"]))
        stamp = datetime.fromtimestamp(int(str(raw["timestamp"])), UTC)
    except (KeyError, ValueError, OverflowError, OSError) as exc:
        raise FeedError(f"Fear & Greed entry has no usable value/timestamp: {raw!r:.120}") from exc
    if not 0 <= value <= 100:
        raise FeedError(f"Fear & Greed value {value} is outside 0-100")
    return stamp, value


def parse_fear_greed(body: str) -> FearGreed:
    """The newest reading plus the daily history (oldest first) from an `/fng/` response body."""
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise FeedError(f"Fear & Greed answer is not JSON: {body[:80]!r}") from exc
    if not isinstance(payload, dict):
        raise FeedError("Fear & Greed answer is not a JSON object")
    metadata = payload.get("metadata")
    error = metadata.get("error") if isinstance(metadata, dict) else None
    if error:
        raise FeedError(f"alternative.me reported an error: {error}")
    data = payload.get("data")
    if not isinstance(data, list) or not data:
        raise FeedError("Fear & Greed answer has no data")
    entries = [_entry(raw) for raw in data]
    newest_time, newest_value = max(entries, key=lambda e: e[0])
    by_day: dict[date, int] = {}
    for stamp, value in entries:
        by_day.setdefault(stamp.date(), value)
    return FearGreed(newest_value, newest_time, tuple(sorted(by_day.items())))


async def fetch_fear_greed(url: str, limit: int, timeout_s: float) -> FearGreed:
    """Fetch the last `limit` daily readings (0 = all); raise FeedError on any failure."""
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session, session.get(
            url, params={"limit": str(limit)}
        ) as response:
            body = await response.text()
            if response.status != 200:
                raise FeedError(f"alternative.me Fear & Greed answered HTTP {response.status}")
    except (TimeoutError, aiohttp.ClientError) as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__
        raise FeedError(f"alternative.me Fear & Greed is unreachable ({reason})") from exc
    return parse_fear_greed(body)
