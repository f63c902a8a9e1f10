"""Fear & Greed from a loopback alternative.me serving its recorded `/fng/` response."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from core.errors import FeedError
from core.feeds.fear_greed import FEAR_GREED_ATTRIBUTION, fetch_fear_greed, parse_fear_greed
from core.models import fear_greed_label
from tests.fakes.exchange_recordings import shared_data_dir
from tests.fakes.fng_server import RECORDED, FakeFearGreed
from tests.feeds import require_shared_data


@pytest.fixture
async def fng() -> AsyncIterator[FakeFearGreed]:
    require_shared_data()
    server = FakeFearGreed()
    await server.start()
    yield server
    await server.close()


async def test_latest_reading_label_and_time(fng: FakeFearGreed) -> None:
    reading = await fetch_fear_greed(fng.url, 1, timeout_s=5)
    newest = fng.recorded["data"][0]
    assert reading.value == int(newest["value"]) == 47
    assert reading.label == newest["value_classification"] == "Neutral"
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    assert reading.timestamp == today
    assert reading.history == ((today.date(), 47),)
    assert fng.requests == [{"limit": "1"}]


async def test_history_is_daily_oldest_first(fng: FakeFearGreed) -> None:
    reading = await fetch_fear_greed(fng.url, 30, timeout_s=5)
    assert len(reading.history) == 30
    days = [d for d, _ in reading.history]
    assert days == sorted(days)
    assert days[-1] - days[0] == timedelta(days=29)
    recorded = [int(e["value"]) for e in fng.recorded["data"][:30]][::-1]
    assert [v for _, v in reading.history] == recorded


async def test_recorded_labels_match_the_value_bands(fng: FakeFearGreed) -> None:
    reading = await fetch_fear_greed(fng.url, 0, timeout_s=5)
    assert len(reading.history) == len(fng.recorded["data"]) == 365
    assert all(fear_greed_label(int(e["value"])) == e["value_classification"] for e in fng.recorded["data"])


async def test_http_500_is_a_feed_error(fng: FakeFearGreed) -> None:
    fng.status = 500
    with pytest.raises(FeedError, match="HTTP 500"):
        await fetch_fear_greed(fng.url, 1, timeout_s=5)


@pytest.mark.parametrize("body, match", [
    ('{"name": "Fear and Greed Index", "data": [{"value": "4', "not JSON"),
    ('{"name": "Fear and Greed Index", "data": []}', "no data"),
    ('{"data": [{"value": "high", "timestamp": "1745280000"}]}', "no usable value"),
    ('{"data": [{"value": "147", "timestamp": "1745280000"}]}', "outside 0-100"),
    ('{"data": [], "metadata": {"error": "Invalid limit"}}', "Invalid limit"),
    ("[1, 2]", "not a JSON object"),
])
async def test_malformed_bodies_are_feed_errors(fng: FakeFearGreed, body: str, match: str) -> None:
    fng.body = body
    with pytest.raises(FeedError, match=match):
        await fetch_fear_greed(fng.url, 1, timeout_s=5)


async def test_timeout_and_unreachable_are_feed_errors(fng: FakeFearGreed) -> None:
    fng.delay_s = 1.0
    with pytest.raises(FeedError, match="timed out"):
        await fetch_fear_greed(fng.url, 1, timeout_s=0.2)
    with pytest.raises(FeedError, match="unreachable"):
        await fetch_fear_greed("http://127.0.0.1:9/fng/", 1, timeout_s=1)


def test_single_reading_file_parses() -> None:
    require_shared_data()
    body = (shared_data_dir() / "raw/jppolotto__cryptoanalyzer/data/fear_greed_index.json").read_text()
    reading = parse_fear_greed(body)
    assert (reading.value, reading.label) == (72, "Greed")
    assert reading.timestamp.date().isoformat() == "2025-04-23"
    assert json.loads(body)["data"][0]["time_until_update"]


def test_attribution_text() -> None:
    assert FEAR_GREED_ATTRIBUTION == "Fear & Greed Index by alternative.me"
    assert RECORDED.endswith("fear_greed.json")
