"""`premia poll-once` and `premia history` through `chatbot.cli.main`, servers on their own thread."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from aiohttp import web

from chatbot.cli import main
from core.store import Store
from tests.engine import BTC_ETH, ServerThread, loopback_config, write_toml
from tests.fakes.exchange_hosts import BINANCE_FAPI
from tests.feeds import require_shared_data

FUNDING = ("GET", BINANCE_FAPI, "/fapi/v1/fundingRate")


@pytest.fixture(scope="module")
def servers():
    require_shared_data()
    with ServerThread() as s:
        yield s


def config(tmp_path: Path, prefix: str, fng_url: str, assets=None, **kw) -> Path:
    return write_toml(tmp_path / "premia.toml",
                      loopback_config(prefix, fng_url, tmp_path / "premia.db", assets or BTC_ETH, **kw))


def test_poll_once_json_prints_snapshot_triggers_and_proposal(servers, tmp_path: Path, capsys) -> None:
    cfg = config(tmp_path, servers.exchange.prefix, servers.fng.url)
    assert main(["poll-once", "--config", str(cfg), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["snapshot_id"].startswith("S-") and out["failures"] == [] and out["dead_feeds"] == {}
    assert Decimal(out["signals"]["BTC"]["price"]) > 0 and "funding_apr" in out["signals"]["BTC"]
    assert out["signals"]["portfolio"]["portfolio_value"] == "10000"
    assert {t["rule"] for t in out["triggers"]} >= {"drift_band"}
    assert out["proposal"]["orders"] and out["alerts"] == [1]
    with Store.open(tmp_path / "premia.db") as store:
        assert store.latest_snapshot()[0] == out["snapshot_id"]
        assert store.get_proposal(out["proposal"]["id"]) is not None
        assert store.job_runs()["poll-once"]["outcome"] == "ok"


def test_poll_once_text_names_the_proposal(servers, tmp_path: Path, capsys) -> None:
    cfg = config(tmp_path, servers.exchange.prefix, servers.fng.url)
    assert main(["poll-once", "--config", str(cfg)]) == 0
    text = capsys.readouterr().out
    assert "Snapshot S-" in text and "Triggers" in text and "Proposal P-" in text
    assert "Fear & Greed Index by alternative.me" in text


def test_poll_once_without_network_fails_politely_naming_the_dead_feeds(tmp_path: Path, capsys) -> None:
    # Port 9 (discard) on the loopback: nothing listens, every connection is refused at once.
    cfg = config(tmp_path, "http://127.0.0.1:9", "http://127.0.0.1:9/fng/", retries=0)
    assert main(["poll-once", "--config", str(cfg)]) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    assert "no market data" in captured.err
    assert "binance (" in captured.err and "fear_greed (" in captured.err
    assert main(["poll-once", "--config", str(cfg), "--json"]) == 2
    out = json.loads(capsys.readouterr().out)
    assert set(out["dead_feeds"]) == {"binance", "fear_greed"} and out["snapshot_id"] is None


def test_history_import_loads_the_real_derived_csvs(shared_data: Path, tmp_path: Path, capsys) -> None:
    cfg = write_toml(tmp_path / "c.toml", {"store_path": str(tmp_path / "h.db"), "assets": BTC_ETH})
    args = ["history", "import", str(shared_data / "derived"), "--config", str(cfg),
            "--since", "2024-01-01", "--until", "2024-01-31"]
    assert main(args) == 0
    assert main(args) == 0  # importing again changes nothing (upserts)
    assert "funding_rates_clean.csv" in capsys.readouterr().out
    with Store.open(tmp_path / "h.db") as store:
        closes = store.closes("BTC", date(2024, 1, 1), date(2024, 1, 31))
        assert len(closes) == 31 and all(isinstance(c, Decimal) for _, c in closes)
        assert store.closes("BTC", date(2024, 2, 1), None) == []
        prints = store.funding_history("BTC/USDT:USDT", datetime(2024, 1, 1, tzinfo=UTC),
                                       datetime(2024, 2, 1, tzinfo=UTC), "binance")
        assert len(prints) == 93  # three settlements a day
        assert len(store.fear_greed_history(None, None)) == 31
        coverage = store.history_coverage()
        assert {c["asset"] for c in coverage["closes"]} >= {"BTC", "ETH", "SOL"}


def test_imported_history_replays_through_the_engine(shared_data: Path, tmp_path: Path) -> None:
    import asyncio

    from core.config import settings_from_dict
    from core.engine import Engine
    from core.market_feed import ReplayFeed
    from core.portfolio_source import PaperBook

    cfg = write_toml(tmp_path / "c.toml", {"store_path": str(tmp_path / "h.db"), "assets": BTC_ETH})
    assert main(["history", "import", str(shared_data / "derived"), "--config", str(cfg),
                 "--since", "2023-11-01", "--until", "2024-02-29"]) == 0
    settings = settings_from_dict({"assets": BTC_ETH})

    async def replay() -> list:
        with Store.open(tmp_path / "h.db") as store:
            feed = ReplayFeed.from_store(store, settings, date(2024, 2, 1), date(2024, 2, 10))
            engine = Engine(settings, store, feed, PaperBook(settings, store, feed.now), feed.now)
            results = [await engine.run_cycle()]
            while feed.advance():
                results.append(await engine.run_cycle())
            return results

    results = asyncio.run(replay())
    assert len(results) == 10 and all(r.snapshot is not None and r.failures == () for r in results)
    assert results[0].snapshot.as_of == datetime(2024, 2, 2, tzinfo=UTC)
    assert results[0].proposal is not None  # the paper book starts all in USDT


def test_history_fetch_is_resumable_where_the_first_run_stopped(servers, tmp_path: Path, capsys) -> None:
    ex = servers.exchange
    cfg = config(tmp_path, ex.prefix, servers.fng.url, {"BTC": {}}, retries=0)
    since = (datetime.now(UTC) - timedelta(days=60)).date()
    original = ex.routes[FUNDING]
    calls = {"n": 0}

    async def dies_on_the_third_page(req):
        calls["n"] += 1
        if calls["n"] >= 3:
            return web.Response(status=503, text="Service Unavailable")
        return await original(req)

    args = ["history", "fetch", "--since", since.isoformat(), "--config", str(cfg), "--page-size", "50"]
    first_start = len(ex.requests_to(BINANCE_FAPI, "/fapi/v1/fundingRate"))
    ex.routes[FUNDING] = dies_on_the_third_page
    try:
        assert main(args) == 1
    finally:
        ex.routes[FUNDING] = original
    err = capsys.readouterr().err
    assert "continue where it stopped" in err and "Traceback" not in err
    with Store.open(tmp_path / "premia.db") as store:
        stored = store.funding_history("BTC/USDT:USDT", None, None, "binance")
        assert len(stored) == 100  # two pages of 50
        last = stored[-1][0]
    asked_first = ex.requests_to(BINANCE_FAPI, "/fapi/v1/fundingRate")[first_start:]
    assert int(asked_first[0].query["startTime"]) == int(datetime.combine(since, datetime.min.time(),
                                                                          UTC).timestamp() * 1000)

    second_start = len(ex.requests_to(BINANCE_FAPI, "/fapi/v1/fundingRate"))
    assert main(args) == 0
    asked = ex.requests_to(BINANCE_FAPI, "/fapi/v1/fundingRate")[second_start:]
    assert int(asked[0].query["startTime"]) == int(last.timestamp() * 1000) + 1
    assert all(int(r.query["limit"]) == 50 for r in asked)
    with Store.open(tmp_path / "premia.db") as store:
        stored = store.funding_history("BTC/USDT:USDT", None, None, "binance")
        times = [t for t, _ in stored]
        start = datetime.combine(since, datetime.min.time(), UTC)
        expected = (datetime.now(UTC) - start) // timedelta(hours=8) + 1  # every 8h print since then
        assert len(times) == len(set(times)) == expected and times[0] == start
        assert {c["asset"] for c in store.history_coverage()["closes"]} == {"BTC"}
        assert len(store.fear_greed_history(since, None)) >= 59
