"""The engine cycle over a scripted feed: storage order, stale data, restarts, dedupe, pause, views."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from core.alerts import HEALTH_FLAG, MEMORY_FLAG
from core.config import Settings, settings_from_dict
from core.engine import PAUSE_FLAG, Engine, load_stored_snapshot
from core.models import Portfolio
from core.portfolio_source import PaperBook
from core.store import Store
from tests.engine import BTC_ETH, Clock, ScriptedFeed, snapshot


def settings(**top) -> Settings:
    return settings_from_dict({"assets": BTC_ETH, **top})


def engine(store: Store, feed: ScriptedFeed | None = None, clock: Clock | None = None,
           s: Settings | None = None) -> Engine:
    s = s or settings()
    clock = clock or Clock()
    return Engine(s, store, feed or ScriptedFeed(), PaperBook(s, store, clock), clock)


def outbox(store: Store, clock: Clock) -> list[dict]:
    return store.pending_alerts("test", clock.t + timedelta(days=1), limit=500)


async def test_a_cycle_stores_snapshot_signals_states_proposal_then_one_alert() -> None:
    store, clock = Store.memory(), Clock()
    e = engine(store, clock=clock)
    result = await e.run_cycle()
    assert result.skipped is None and result.failures == ()
    assert result.proposal is not None and result.proposal.orders
    stored = store.get_proposal(result.proposal.id)
    assert stored is not None and stored.status == "proposed"
    assert stored.proposal.snapshot_id == result.snapshot_id
    # The stored snapshot is the public format, portfolio included, and reads back the same market.
    snap, portfolio = load_stored_snapshot(store.get_snapshot(result.snapshot_id))
    assert snap == result.snapshot
    assert portfolio == Portfolio({"USDT": Decimal(10_000)})
    signals = {(r["asset"], r["name"]): r["value"] for r in store.latest_signals()}
    assert signals[("BTC", "funding_apr")] == str(Decimal("0.0001") * 8760 / 8)
    assert signals[(None, "fear_greed")] == "50"
    alerts = outbox(store, clock)
    assert [a["id"] for a in alerts] == list(result.alerts) and len(alerts) == 1
    payload = alerts[0]["payload"]
    assert alerts[0]["kind"] == "proposal" and payload["proposal_id"] == result.proposal.id
    drift = {t["asset"]: t for t in payload["triggers"] if t["rule"] == "drift_band"}
    assert drift["BTC"]["values"]["target"] == "40.00%" and drift["BTC"]["values"]["band_pp"] == "5"
    assert "outside" in drift["BTC"]["explanation"]
    assert store.get_paper_book() is not None  # seeded from [paper] on first read


async def test_an_identical_second_cycle_keeps_the_proposal_and_adds_no_alert() -> None:
    store, clock = Store.memory(), Clock()
    e = engine(store, clock=clock)
    first = await e.run_cycle()
    clock.advance(minutes=5)
    second = await e.run_cycle()
    assert second.alerts == ()
    assert second.proposal is not None and second.proposal.id == first.proposal.id
    assert [p.id for p in store.open_proposals(clock.t)] == [first.proposal.id]
    assert len(outbox(store, clock)) == 1


async def test_after_expiry_a_new_proposal_supersedes_nothing_and_stays_quiet() -> None:
    store, clock = Store.memory(), Clock()
    e = engine(store, clock=clock)
    first = await e.run_cycle()
    clock.advance(minutes=30)
    second = await e.run_cycle()
    assert second.proposal is not None and second.proposal.id != first.proposal.id
    assert store.get_proposal(first.proposal.id).status == "expired"
    assert second.alerts == ()  # the same rules, already told


async def test_stale_quotes_never_drive_a_proposal_and_say_so_once() -> None:
    store, clock = Store.memory(), Clock()
    feed = ScriptedFeed(lambda now: snapshot(now, age=timedelta(hours=1)))
    e = engine(store, feed, clock)
    for _ in range(3):
        result = await e.run_cycle()
        clock.advance(minutes=5)
        assert result.proposal is None and result.skipped == "stale data: no proposal"
        assert store.open_proposals(clock.t) == []
    stale = [a for a in outbox(store, clock) if a["kind"] == "stale"]
    assert len(stale) == 1 and "BTC, ETH" in stale[0]["payload"]["text"]
    feed.make = snapshot  # fresh quotes again
    result = await e.run_cycle()
    assert result.proposal is not None
    kinds = [a["kind"] for a in outbox(store, clock)]
    assert kinds.count("stale") == 1 and kinds.count("feed_up") == 1 and kinds.count("proposal") == 1


async def test_a_dead_feed_raises_one_alert_not_one_per_poll_and_one_on_recovery() -> None:
    store, clock = Store.memory(), Clock()
    feed = ScriptedFeed()
    e = engine(store, feed, clock)
    await e.run_cycle()
    feed.down["binance"] = "ExchangeNotAvailable: 503"
    for _ in range(4):
        clock.advance(minutes=5)
        result = await e.run_cycle()
        assert result.snapshot is None and "binance" in (result.skipped or "")
    down = [a for a in outbox(store, clock) if a["kind"] == "feed_down"]
    assert len(down) == 1 and "503" in down[0]["payload"]["text"]
    assert "binance" in e.alerts.feeds_down()
    del feed.down["binance"]
    clock.advance(minutes=5)
    await e.run_cycle()
    clock.advance(minutes=5)
    await e.run_cycle()
    up = [a for a in outbox(store, clock) if a["kind"] == "feed_up"]
    assert len(up) == 1 and "after 20 min" in up[0]["payload"]["text"]
    assert e.alerts.feeds_down() == {}


async def test_rule_state_survives_a_restart(tmp_path: Path) -> None:
    path, clock = tmp_path / "premia.db", Clock()
    feed = ScriptedFeed(lambda now: snapshot(now, fear_greed=10))
    with Store.open(path) as store:
        first = await engine(store, feed, clock).run_cycle()
        assert [t.rule for t in first.evaluation.triggers if t.state_to] == ["fear_greed"]
        assert store.get_rule_states()["fear_greed"]["state"] == "fear"
    clock.advance(minutes=5)
    with Store.open(path) as store:  # a new process: new engine, same file
        again = await engine(store, feed, clock).run_cycle()
        assert again.evaluation.states["fear_greed"].state == "fear"
        assert [t for t in again.evaluation.triggers if t.rule == "fear_greed"] == []
        # The held state still applies its effect: the futures book stays at net neutral.
        assert all(again.evaluation.targets.futures_weight(a) == 0 for a in ("BTC", "ETH"))
        assert again.alerts == ()
        feed.make = lambda now: snapshot(now, fear_greed=50)
        clock.advance(minutes=5)
        back = await engine(store, feed, clock).run_cycle()
        assert [(t.state_from, t.state_to) for t in back.evaluation.triggers if t.rule == "fear_greed"] == [
            ("fear", "normal")]
        assert store.get_rule_states()["fear_greed"]["state"] == "normal"


async def test_the_pause_flag_skips_proposing_but_keeps_evaluating() -> None:
    store, clock = Store.memory(), Clock()
    store.set_flag(PAUSE_FLAG, {"by": "test"}, clock.t)
    result = await engine(store, clock=clock).run_cycle()
    assert result.proposal is None and result.skipped.startswith("paused")
    assert result.evaluation.triggers and store.open_proposals(clock.t) == []
    assert [a["kind"] for a in outbox(store, clock)] == ["trigger"]
    assert "No order proposed: paused" in outbox(store, clock)[0]["payload"]["text"]


async def test_a_new_rule_firing_is_told_with_the_rules_already_active_counted() -> None:
    store, clock = Store.memory(), Clock()
    feed = ScriptedFeed()
    e = engine(store, feed, clock)
    first = await e.run_cycle()
    feed.make = lambda now: snapshot(now, fear_greed=10)
    clock.advance(minutes=5)
    second = await e.run_cycle()
    assert second.proposal is not None and second.proposal.id != first.proposal.id
    assert store.get_proposal(first.proposal.id).status == "superseded"
    alert = outbox(store, clock)[-1]
    assert [t["rule"] for t in alert["payload"]["triggers"]] == ["fear_greed"]
    assert alert["payload"]["still_active"] >= 2 and alert["payload"]["proposal_id"] == second.proposal.id


async def test_fresh_plan_reads_the_stored_snapshot_and_writes_no_rule_state() -> None:
    store, clock = Store.memory(), Clock()
    feed = ScriptedFeed()
    e = engine(store, feed, clock)
    cycle = await e.run_cycle()
    before = store.get_rule_states()
    feed.make = lambda now: snapshot(now, fear_greed=10)  # would flip fear_greed if fetched
    ev, p = await e.fresh_plan()
    assert feed.fetches == 1 and p.snapshot_id == cycle.snapshot_id
    assert store.get_rule_states() == before and store.get_proposal(p.id) is None
    clock.advance(hours=1)  # the stored snapshot is now too old to plan from: fetch afresh
    ev, p = await e.fresh_plan()
    assert feed.fetches == 2 and p.snapshot_id != cycle.snapshot_id
    assert any(t.rule == "fear_greed" for t in ev.triggers)
    assert store.get_rule_states() == before


async def test_latest_serves_another_process_snapshot_and_the_current_paper_book() -> None:
    store, clock = Store.memory(), Clock()
    await engine(store, clock=clock).run_cycle()
    reader = engine(store, clock=clock)  # never polled itself, like `premia chat`
    view = reader.latest()
    assert view is not None and view[1].balances == {"USDT": Decimal(10_000)}
    PaperBook(reader.settings, store, clock).put(Portfolio({"USDT": Decimal(5_000), "BTC": Decimal("0.05")}))
    _, portfolio, ev = reader.latest()
    assert portfolio.balances["BTC"] == Decimal("0.05")
    assert ev.valuation.value == Decimal(5_000) + Decimal("0.05") * 100_000


async def test_refresh_raises_a_feed_error_naming_the_dead_feed() -> None:
    from core.errors import FeedError

    feed = ScriptedFeed()
    feed.down["binance"] = "RequestTimeout"
    e = engine(Store.memory(), feed)
    with pytest.raises(FeedError, match="binance: RequestTimeout"):
        await e.refresh()


async def test_a_feed_that_raises_is_recorded_not_propagated() -> None:
    class Broken(ScriptedFeed):
        async def fetch(self, now):
            raise RuntimeError("bug in a feed")

    store, clock = Store.memory(), Clock()
    result = await engine(store, Broken(), clock).run_cycle()
    assert result.snapshot is None and result.failures == ("feed: RuntimeError: bug in a feed",)
    assert [a["kind"] for a in outbox(store, clock)] == ["feed_down"]


async def test_alert_memory_lives_in_the_store() -> None:
    store, clock = Store.memory(), Clock()
    await engine(store, clock=clock).run_cycle()
    memory = store.get_flag(MEMORY_FLAG)
    assert ["drift_band:BTC:on", "BTC"] in memory["active"]
    assert store.get_flag(HEALTH_FLAG)["binance"]["ok"] is True


async def test_keep_clients_false_closes_the_feed_after_each_fetch() -> None:
    feed = ScriptedFeed()
    e = engine(Store.memory(), feed)
    e.keep_clients = False
    await e.run_cycle()
    assert feed.closed == 1


async def test_quotes_from_the_future_clock_skew_never_drive_a_proposal() -> None:
    store, clock = Store.memory(), Clock()
    feed = ScriptedFeed(lambda now: snapshot(now, age=-timedelta(minutes=10)))  # exchange clock ahead
    result = await engine(store, feed, clock).run_cycle()
    assert result.proposal is None and result.skipped == "stale data: no proposal"
    assert result.evaluation.freshness.stale_spot == {"BTC", "ETH"}


async def test_replay_feed_serves_the_last_finished_day_and_walks_a_clock(shared_data) -> None:
    from datetime import UTC, date, datetime

    from core.history_csv import load_history
    from core.market_feed import ReplayFeed

    s = settings()
    frame = load_history(shared_data / "derived", ["BTC", "ETH"], date(2024, 1, 1), date(2024, 3, 31))
    feed = ReplayFeed(frame, s, start=date(2024, 3, 1), end=date(2024, 3, 5))
    assert feed.now() == datetime(2024, 3, 2, tzinfo=UTC)
    report = await feed.fetch(datetime(2024, 3, 3, 12, tzinfo=UTC))
    assert report.snapshot.as_of == datetime(2024, 3, 3, tzinfo=UTC)
    assert report.statuses[0].ok and report.snapshot.assets["BTC"].perp is not None
    early = await feed.fetch(datetime(2024, 2, 1, tzinfo=UTC))
    assert early.snapshot is None and not early.statuses[0].ok
    days = [feed.now()]
    while feed.advance():
        days.append(feed.now())
    assert len(days) == 5 and days[-1] == datetime(2024, 3, 6, tzinfo=UTC)


async def test_an_unreadable_account_is_one_alert_and_the_market_is_still_stored() -> None:
    from core.errors import FeedError

    class DeadAccount:
        name = "exchange"

        async def portfolio(self) -> Portfolio:
            raise FeedError("cannot read the binance account: AuthenticationError: invalid key")

        def cached(self) -> Portfolio | None:
            return None

        async def close(self) -> None:
            return None

    store, clock = Store.memory(), Clock()
    e = Engine(settings(), store, ScriptedFeed(), DeadAccount(), clock)
    for _ in range(2):
        result = await e.run_cycle()
        clock.advance(minutes=5)
    assert result.skipped.startswith("no portfolio") and "AuthenticationError" in result.failures[0]
    snap, portfolio = load_stored_snapshot(store.get_snapshot(result.snapshot_id))
    assert portfolio is None and snap.assets["BTC"].spot is not None
    assert [a["kind"] for a in outbox(store, clock)] == ["feed_down"]
    assert e.latest() is None  # a market without a portfolio is no view to show


def test_the_executor_s_stored_snapshots_are_read_too() -> None:
    from core.codec import snapshot_to_dict
    from core.errors import SnapshotError
    from tests.engine import T0

    snap = snapshot(T0)
    assert load_stored_snapshot(snapshot_to_dict(snap)) == (snap, None)
    with pytest.raises(SnapshotError):
        load_stored_snapshot({"assets": {"BTC": {}}})


async def test_states_proposal_and_alert_are_written_together_or_not_at_all(monkeypatch) -> None:
    store, clock = Store.memory(), Clock()
    feed = ScriptedFeed(lambda now: snapshot(now, fear_greed=10))

    def crash(*args, **kwargs):
        raise RuntimeError("power cut while queueing the alert")

    monkeypatch.setattr(store, "enqueue_alert", crash)
    with pytest.raises(RuntimeError):
        await engine(store, feed, clock).run_cycle()
    assert store.get_rule_states() == {} and store.recent_proposals() == []
    monkeypatch.undo()
    result = await engine(store, feed, clock).run_cycle()  # the restart tells it, once
    assert any(t.rule == "fear_greed" for t in result.evaluation.triggers) and len(result.alerts) == 1


async def test_the_exchange_s_minimum_notional_keeps_small_orders_out_of_the_proposal() -> None:
    from core.planner import MarketRule

    store, clock = Store.memory(), Clock()
    feed = ScriptedFeed()
    first = await engine(store, feed, clock).run_cycle()
    btc = [o for o in first.proposal.orders if o.symbol == "BTC/USDT"]
    assert btc and all(o.notional < Decimal(5_000) for o in btc)
    # The exchange says 5,000 is the least it takes for BTC/USDT: the BTC leg goes, ETH stays.
    feed.rules = {"BTC/USDT": MarketRule(Decimal(5_000), Decimal("0.00001"), Decimal("0.01"))}
    _ev, proposal = await engine(Store.memory(), feed, clock).fresh_plan()
    assert not [o for o in proposal.orders if o.symbol == "BTC/USDT"]
    assert [o for o in proposal.orders if o.symbol == "ETH/USDT"]
    assert any("BTC" in w and "minimum" in w for w in proposal.warnings)
