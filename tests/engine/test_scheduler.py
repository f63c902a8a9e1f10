"""Scheduler timing with fixed times and a fake clock; job runs recorded; the daily jobs."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import time_machine

from core.config import settings_from_dict
from core.engine import Engine
from core.portfolio_source import PaperBook
from core.scheduler import JOBS, FundingTrigger, PremiaScheduler
from core.store import Store
from tests.engine import BTC_ETH, Clock, ScriptedFeed, market, snapshot

T0 = datetime(2025, 6, 17, 9, 30, tzinfo=UTC)
OFFSET = timedelta(seconds=60)


def make(store: Store | None = None, clock: Clock | None = None, feed: ScriptedFeed | None = None,
         **scheduler: int) -> PremiaScheduler:
    s = settings_from_dict({"assets": BTC_ETH, "scheduler": scheduler})
    store, clock = store or Store.memory(), clock or Clock(T0)
    engine = Engine(s, store, feed or ScriptedFeed(), PaperBook(s, store, clock), clock)
    return PremiaScheduler(engine)


def fire_times(trigger, start: datetime, n: int) -> list[datetime]:
    out, previous = [], None
    for _ in range(n):
        previous = trigger.get_next_fire_time(previous, start)
        out.append(previous)
    return out


def test_poll_runs_every_poll_minutes() -> None:
    trigger = make(poll_minutes=5).triggers()["poll"]
    first = trigger.get_next_fire_time(None, T0)
    times = [first, *fire_times(trigger, first, 3)[1:]]
    steps = {b - a for a, b in itertools.pairwise(times)}
    assert steps == {timedelta(minutes=5)}
    assert make(poll_minutes=2).triggers()["poll"].interval == timedelta(minutes=2)


def test_funding_job_follows_an_8h_symbol_just_after_each_settlement() -> None:
    trigger = FundingTrigger(lambda: [(Decimal(8), datetime(2025, 6, 17, 16, tzinfo=UTC))], OFFSET)
    assert fire_times(trigger, T0, 4) == [datetime(2025, 6, 17, h, 1, tzinfo=UTC) for h in (16,)] + [
        datetime(2025, 6, 18, 0, 1, tzinfo=UTC), datetime(2025, 6, 18, 8, 1, tzinfo=UTC),
        datetime(2025, 6, 18, 16, 1, tzinfo=UTC)]


def test_funding_job_follows_a_4h_symbol_and_the_shortest_interval_wins() -> None:
    four = (Decimal(4), datetime(2025, 6, 17, 12, tzinfo=UTC))
    eight = (Decimal(8), datetime(2025, 6, 17, 16, tzinfo=UTC))
    trigger = FundingTrigger(lambda: [eight, four], OFFSET)
    assert fire_times(trigger, T0, 4) == [datetime(2025, 6, 17, h, 1, tzinfo=UTC) for h in (12, 16, 20)] + [
        datetime(2025, 6, 18, 0, 1, tzinfo=UTC)]


def test_funding_job_without_a_stated_next_time_uses_the_utc_grid_and_8h_by_default() -> None:
    assert FundingTrigger(lambda: [(Decimal(4), None)], OFFSET).get_next_fire_time(None, T0) == \
        datetime(2025, 6, 17, 12, 1, tzinfo=UTC)
    # Nothing known yet (first start): an 8h grid, never "no next time" (that would drop the job).
    assert FundingTrigger(lambda: [], OFFSET).get_next_fire_time(None, T0) == \
        datetime(2025, 6, 17, 16, 1, tzinfo=UTC)
    # Exactly at a fire time with no previous run: that time, not the next one.
    at = datetime(2025, 6, 17, 8, 1, tzinfo=UTC)
    assert FundingTrigger(lambda: [], OFFSET).get_next_fire_time(None, at) == at


async def test_after_a_poll_the_funding_job_is_aligned_to_the_polled_symbols() -> None:
    def with_wif(now: datetime):
        snap = snapshot(now)  # BTC and ETH settle every 8h
        return replace(snap, assets={**snap.assets, "WIF": market("WIF", "1.2", now, interval=4)})

    sched = make(feed=ScriptedFeed(snapshot))
    await sched.poll()
    funding = sched.triggers()["funding"]
    assert funding.get_next_fire_time(None, T0) == datetime(2025, 6, 17, 16, 1, tzinfo=UTC)
    sched.engine.feed = ScriptedFeed(with_wif)
    await sched.poll()
    assert funding.get_next_fire_time(None, T0) == datetime(2025, 6, 17, 12, 1, tzinfo=UTC)


def test_daily_jobs_run_at_their_configured_utc_times() -> None:
    triggers = make(fear_greed_hour_utc=0, fear_greed_minute_utc=10, digest_hour_utc=8).triggers()
    assert triggers["fear_greed"].get_next_fire_time(None, T0) == datetime(2025, 6, 18, 0, 10, tzinfo=UTC)
    assert triggers["digest"].get_next_fire_time(None, T0) == datetime(2025, 6, 18, 8, 0, tzinfo=UTC)
    assert triggers["watchdog"].interval == timedelta(minutes=15)
    assert triggers["markets"].interval == timedelta(hours=24)


async def test_jobs_coalesce_never_overlap_and_have_a_grace() -> None:
    sched = make(poll_minutes=5)
    running = sched.start()
    try:
        jobs = {j.id: j for j in running.get_jobs()}
        assert set(jobs) == set(JOBS)
        for job in jobs.values():
            assert job.coalesce is True and job.max_instances == 1 and job.misfire_grace_time >= 30
        assert str(running.timezone) == "UTC"
        assert jobs["poll"].next_run_time <= datetime.now(UTC)  # the first poll at start-up
    finally:
        sched.shutdown()


async def test_every_job_run_is_recorded_with_its_outcome() -> None:
    store, clock = Store.memory(), Clock(T0)
    sched = make(store, clock)
    for name in JOBS:
        assert await sched.run_job(name) in ("ok", "failed")
        clock.advance(minutes=1)
    runs = store.job_runs()
    assert set(runs) == set(JOBS)
    assert runs["poll"]["outcome"] == "ok" and "proposal P-" in runs["poll"]["detail"]
    assert runs["watchdog"]["outcome"] == "ok" and runs["digest"]["outcome"] == "ok"
    assert runs["poll"]["started"] == T0 and runs["poll"]["runs"] == 1
    await sched.run_job("poll")
    assert store.job_runs()["poll"]["runs"] == 2
    assert store.last_heartbeat("scheduler") is not None


async def test_a_failing_job_is_recorded_and_does_not_raise() -> None:
    store = Store.memory()
    feed = ScriptedFeed()
    feed.down["binance"] = "ExchangeNotAvailable"
    sched = make(store, feed=feed)
    assert await sched.run_job("poll") == "failed"

    async def boom() -> str:
        raise RuntimeError("markets exploded")

    feed.refresh_markets = lambda now: boom()  # type: ignore[method-assign]
    assert await sched.run_job("markets") == "failed"
    runs = store.job_runs()
    assert "no market data" in runs["poll"]["detail"]
    assert runs["markets"]["detail"] == "RuntimeError: markets exploded"


async def test_watchdog_alerts_once_when_polls_stop_and_once_when_they_resume() -> None:
    store, clock = Store.memory(), Clock(T0)
    sched = make(store, clock)
    await sched.run_job("poll")
    clock.advance(minutes=10)
    assert await sched.run_job("watchdog") == "ok"
    for _ in range(3):
        clock.advance(minutes=15)
        assert await sched.run_job("watchdog") == "failed"
    await sched.run_job("poll")
    await sched.run_job("watchdog")
    kinds = [a["kind"] for a in store.pending_alerts("t", clock.t, limit=100)]
    assert kinds.count("feed_down") == 1 and kinds.count("feed_up") == 1


async def test_the_digest_is_queued_once_a_day() -> None:
    store, clock = Store.memory(), Clock(T0)
    sched = make(store, clock)
    await sched.run_job("poll")
    await sched.run_job("digest")
    await sched.run_job("digest")
    digests = [a for a in store.pending_alerts("t", clock.t, limit=100) if a["kind"] == "digest"]
    assert len(digests) == 1
    text = digests[0]["payload"]["text"]
    assert "Portfolio 10,000.00 USDT" in text and "alternative.me" in text and "Open proposal P-" in text
    assert digests[0]["payload"]["table"]["headers"][0] == "asset"


async def test_the_running_scheduler_polls_on_time_under_a_fake_clock() -> None:
    store = Store.memory()
    with time_machine.travel(T0, tick=False) as traveller:
        s = settings_from_dict({"assets": BTC_ETH, "scheduler": {"poll_minutes": 5}})
        engine = Engine(s, store, ScriptedFeed(), PaperBook(s, store, lambda: datetime.now(UTC)),
                        lambda: datetime.now(UTC))
        sched = PremiaScheduler(engine, first_poll_now=False)
        running = sched.start()
        try:
            assert running.get_job("poll").next_run_time == T0 + timedelta(minutes=5)
            for minutes in (5, 10):
                traveller.shift(timedelta(minutes=5))
                running.wakeup()
                for _ in range(50):
                    await asyncio.sleep(0.01)
                    if store.job_runs().get("poll", {}).get("runs", 0) == minutes // 5:
                        break
                run = store.job_runs()["poll"]
                assert run["runs"] == minutes // 5 and run["started"] == T0 + timedelta(minutes=minutes)
            assert running.get_job("poll").next_run_time == T0 + timedelta(minutes=15)
        finally:
            sched.shutdown()
