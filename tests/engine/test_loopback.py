"""The engine end to end with real ccxt against the loopback exchange and Fear & Greed server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from core.config import Settings, settings_from_dict
from core.engine import Engine
from core.market_feed import LiveFeed
from core.portfolio_source import ExchangePortfolio, PaperBook
from core.store import Store
from tests.engine import loopback_config, loopback_settings
from tests.fakes.exchange_hosts import BINANCE_FAPI, BINANCE_SPOT
from tests.feeds import TEST_CCXT

TICKER = "/api/v3/ticker/24hr"
PREMIUM = "/fapi/v1/premiumIndex"
FUNDING = "/fapi/v1/fundingRate"
KLINES = "/api/v3/klines"
BINANCE_ROUTES = [(BINANCE_SPOT, TICKER), (BINANCE_SPOT, KLINES), (BINANCE_FAPI, PREMIUM),
                  (BINANCE_FAPI, FUNDING), (BINANCE_FAPI, "/fapi/v1/fundingInfo"),
                  (BINANCE_FAPI, "/fapi/v1/ticker/24hr"), (BINANCE_SPOT, "/api/v3/exchangeInfo"),
                  (BINANCE_FAPI, "/fapi/v1/exchangeInfo")]


def utc_now() -> datetime:
    return datetime.now(UTC)


pytestmark = pytest.mark.usefixtures("short_retry_waits")



class Rig:
    """An engine on a store file, a live feed to the loopback servers, the paper book."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings, self.store = settings, store
        self.feed = LiveFeed(settings, store, ccxt_overrides=TEST_CCXT)
        self.engine = Engine(settings, store, self.feed, PaperBook(settings, store, utc_now), utc_now)

    def alerts(self) -> list[dict[str, Any]]:
        return self.store.pending_alerts("test", utc_now() + timedelta(days=1), limit=500)


@pytest.fixture
async def rig(servers, tmp_path: Path) -> AsyncIterator[Rig]:
    ex, fng = servers
    settings = loopback_settings(ex.prefix, fng.url, tmp_path / "premia.db")
    with Store.open(settings.db_path) as store:
        r = Rig(settings, store)
        yield r
        await r.engine.close()


async def test_one_cycle_writes_snapshot_trigger_proposal_and_outbox_row_once(rig: Rig) -> None:
    first = await rig.engine.run_cycle()
    assert first.failures == () and first.skipped is None
    store = rig.store
    row = store.latest_snapshot()
    assert row is not None and row[0] == first.snapshot_id
    btc = first.snapshot.assets["BTC"]
    assert btc.perp is not None and btc.perp.funding_history and btc.closes
    assert first.snapshot.fear_greed is not None
    assert first.evaluation.triggers
    assert first.proposal is not None and store.get_proposal(first.proposal.id).status == "proposed"
    assert len(rig.alerts()) == 1 and rig.alerts()[0]["payload"]["proposal_id"] == first.proposal.id
    # History the poll brought is kept: funding prints, daily closes, Fear & Greed.
    coverage = store.history_coverage()
    assert {f["symbol"] for f in coverage["funding"]} == {"BTC/USDT:USDT", "ETH/USDT:USDT"}
    assert {c["asset"] for c in coverage["closes"]} == {"BTC", "ETH"}
    assert coverage["fear_greed"]["count"] > 30

    second = await rig.engine.run_cycle()
    assert second.alerts == () and len(rig.alerts()) == 1
    assert second.proposal is not None and second.proposal.id == first.proposal.id
    assert second.snapshot_id != first.snapshot_id


async def test_the_second_poll_asks_only_for_funding_settled_since_the_stored_print(rig: Rig,
                                                                                    servers) -> None:
    ex, _ = servers
    await rig.engine.run_cycle()
    last = rig.store.latest_funding_time("binance", "BTC/USDT:USDT")
    asked_before = len(ex.requests_to(BINANCE_FAPI, FUNDING))
    second = await rig.engine.run_cycle()
    asked = [r for r in ex.requests_to(BINANCE_FAPI, FUNDING)[asked_before:]
             if r.query["symbol"] == "BTCUSDT"]
    assert [int(r.query["startTime"]) for r in asked] == [int(last.timestamp() * 1000) + 1]
    # The snapshot still carries the whole window, from the store.
    history = second.snapshot.assets["BTC"].perp.funding_history
    assert history[0].time < utc_now() - timedelta(days=14) and history[-1].time == last


async def test_a_restart_takes_markets_from_the_store_without_loading_them(servers, tmp_path: Path) -> None:
    ex, fng = servers
    settings = loopback_settings(ex.prefix, fng.url, tmp_path / "premia.db")
    with Store.open(settings.db_path) as store:
        first = Rig(settings, store)
        await first.engine.run_cycle()
        await first.engine.close()
        loads = len(ex.requests_to(path="/fapi/v1/exchangeInfo"))
        restarted = Rig(settings, store)
        result = await restarted.engine.run_cycle()
        await restarted.engine.close()
    assert result.failures == () and result.snapshot is not None
    assert len(ex.requests_to(path="/fapi/v1/exchangeInfo")) == loads == 1


async def test_a_dying_exchange_raises_one_alert_and_its_recovery_one_more(rig: Rig, servers) -> None:
    ex, _ = servers
    await rig.engine.run_cycle()
    for host, path in BINANCE_ROUTES:
        ex.fail(host, path, 503)
    for _ in range(3):
        result = await rig.engine.run_cycle()
        assert result.snapshot is None and result.skipped.startswith("no market data: binance")
        assert any("ExchangeNotAvailable" in f for f in result.failures)
    assert [a["kind"] for a in rig.alerts()].count("feed_down") == 1
    ex.clear_faults()
    for _ in range(2):
        result = await rig.engine.run_cycle()
        assert result.snapshot is not None
    kinds = [a["kind"] for a in rig.alerts()]
    assert kinds.count("feed_down") == 1 and kinds.count("feed_up") == 1
    assert rig.store.job_runs() == {}  # the engine records no job runs; the scheduler does


async def test_fear_and_greed_down_alone_is_one_alert_and_the_market_goes_on(rig: Rig, servers) -> None:
    _, fng = servers
    fng.status = 500
    for _ in range(3):
        result = await rig.engine.run_cycle()
        assert result.snapshot is not None and result.proposal is not None
    down = [a for a in rig.alerts() if a["kind"] == "feed_down"]
    assert len(down) == 1 and down[0]["payload"]["feed"] == "fear_greed"
    assert "HTTP 500" in down[0]["payload"]["detail"]


async def test_faults_leave_the_cycle_complete_with_what_it_could_get(servers, tmp_path: Path) -> None:
    """Malformed JSON, a persistent 429, a 418 then success, 5xx, a timeout, an unknown symbol."""
    ex, fng = servers
    assets = {"BTC": {}, "ETH": {"bucket": "altcoins"}, "SOL": {"bucket": "altcoins"},
              "NOPE": {"bucket": "altcoins"}}
    settings = loopback_settings(ex.prefix, fng.url, tmp_path / "p.db", assets, timeout_seconds=1.0)
    ex.malformed(BINANCE_FAPI, PREMIUM, query={"symbol": "ETHUSDT"})
    ex.fail(BINANCE_SPOT, TICKER, 429, query={"symbol": "SOLUSDT"})
    ex.fail(BINANCE_FAPI, PREMIUM, 418, times=1, query={"symbol": "BTCUSDT"})
    ex.fail(BINANCE_FAPI, FUNDING, 502, query={"symbol": "SOLUSDT"})
    ex.delay(BINANCE_SPOT, KLINES, 3.0, query={"symbol": "ETHUSDT"})
    with Store.open(settings.db_path) as store:
        r = Rig(settings, store)
        result = await r.engine.run_cycle()
        await r.engine.close()
        failed = "\n".join(result.failures)
        assert "binance ETH perp: MalformedResponse" in failed
        assert "binance SOL spot: DDoSProtection" in failed
        assert "binance SOL funding history: ExchangeNotAvailable" in failed
        assert "binance ETH closes: RequestTimeout" in failed
        assert "binance NOPE spot" in failed and "not listed" in failed
        assert "BTC" not in {line.split()[1] for line in result.failures}  # the 418 was retried
        # What came is stored and evaluated; missing prices block any proposal and say so once.
        assert store.get_snapshot(result.snapshot_id) is not None
        assert result.snapshot.assets["BTC"].perp is not None
        assert result.proposal is None and result.skipped == "stale data: no proposal"
        stale = [a for a in r.alerts() if a["kind"] == "stale"]
        assert len(stale) == 1 and "NOPE" in stale[0]["payload"]["text"]


async def test_exchange_portfolio_reads_spot_futures_and_positions(servers, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from decimal import Decimal

    from tests.fakes.exchange_orders import API_KEY, SECRET, OrderDesk

    ex, fng = servers
    desk = OrderDesk(ex)
    desk.fund(spot={"USDT": "1000", "BTC": "0.5"}, futures={"USDT": "250"})
    monkeypatch.setenv("PREMIA_TEST_KEY", API_KEY)
    monkeypatch.setenv("PREMIA_TEST_SECRET", SECRET)
    cfg = loopback_config(ex.prefix, fng.url, tmp_path / "p.db")
    cfg["exchanges"]["binance"].update(api_key_env="PREMIA_TEST_KEY", secret_env="PREMIA_TEST_SECRET")
    keyed = settings_from_dict(cfg)
    source = ExchangePortfolio(keyed, ccxt_overrides=TEST_CCXT)
    try:
        portfolio = await source.portfolio()
    finally:
        await source.close()
    assert portfolio.balances["BTC"] == Decimal("0.5")
    assert portfolio.balances["USDT"] == Decimal(1250)
    assert source.cached() == portfolio


async def test_sizing_rules_come_from_the_exchange_s_market_metadata(rig: Rig) -> None:
    assert rig.feed.sizing_rules() == {}  # nothing loaded yet: the planner uses [orders]
    await rig.engine.run_cycle()
    rules = rig.feed.sizing_rules()
    market = rig.feed.clients.spot("binance").markets["BTC/USDT"]
    assert rules["BTC/USDT"].amount_step == Decimal(str(market["precision"]["amount"]))
    assert rules["BTC/USDT"].price_step == Decimal(str(market["precision"]["price"]))
    assert rules["BTC/USDT"].min_notional >= Decimal(str(market["limits"]["cost"]["min"]))
    assert "BTC/USDT:USDT" in rules
