"""The bot's clockwork: APScheduler (AsyncIOScheduler, explicit UTC) driving the engine.

    poll        every `poll_minutes`, the first one at start-up
    funding     `funding_offset_seconds` after each funding settlement of the configured
                perpetuals, from each symbol's own interval and next funding time (8h, 4h, 1h)
    fear_greed  daily at `fear_greed_hour_utc:fear_greed_minute_utc` (alternative.me updates daily)
    digest      daily at `digest_hour_utc`: one summary event in the outbox
    watchdog    every `watchdog_minutes`: heartbeat, expire proposals, alert when polls stopped
    markets     every `markets_refresh_hours`: reload exchange markets (new dated futures)

Jobs coalesce, never overlap themselves (max_instances=1) and have a misfire grace; each run's
start, end, outcome and detail are recorded in the store (`job_runs`). Job functions take their
time from the injected clock, so tests call them directly; trigger times are checked with
`trigger.get_next_fire_time(None, t0)`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from core.engine import CycleResult, Engine
from core.errors import PremiaError
from core.market_feed import FeedStatus
from core.redact import describe, scrub_text
from core.rules.base import pct

log = logging.getLogger(__name__)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DEFAULT_INTERVAL_H = Decimal(8)
SCHEDULER_HEARTBEAT = "scheduler"
POLLING = "polling"  # the pseudo-feed the watchdog reports on
# Seconds a job may start late and still run: a poll that late is replaced by the next one,
# a daily job is worth running late rather than not at all.
GRACE_S = {"poll": 30, "funding": 300, "fear_greed": 3600, "digest": 3600, "watchdog": 60,
           "markets": 3600}
JOBS = tuple(GRACE_S)

FundingEntry = tuple[Decimal, datetime | None]  # (interval hours, next settlement if known)


class FundingTrigger(BaseTrigger):
    """Fires `offset` after each settlement of any listed perpetual.

    Settlements are every `interval` hours from the symbol's stated next funding time, or from
    00:00 UTC when it is unknown (exchanges settle 8h funding at 00, 08 and 16 UTC). With no
    perpetual known yet it follows an 8h grid, so the job is never dropped.
    """

    def __init__(self, entries: Callable[[], Iterable[FundingEntry]], offset: timedelta) -> None:
        self.entries = entries
        self.offset = offset

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime:
        after = previous_fire_time or now
        strictly = previous_fire_time is not None
        fires = [self._next(hours, anchor, after, strictly)
                 for hours, anchor in (list(self.entries()) or [(DEFAULT_INTERVAL_H, None)]) if hours > 0]
        return min(fires) if fires else self._next(DEFAULT_INTERVAL_H, None, after, strictly)

    def _next(self, hours: Decimal, anchor: datetime | None, after: datetime, strictly: bool) -> datetime:
        step = timedelta(seconds=int(Decimal(hours) * 3600))
        origin = (anchor or EPOCH) + self.offset
        k = -((origin - after) // step)  # ceil((after - origin) / step) in whole steps
        fire = origin + k * step
        if fire < after or (strictly and fire == after):
            fire += step
        return fire.astimezone(UTC)

    def __str__(self) -> str:
        return f"funding[+{int(self.offset.total_seconds())}s]"

    def __repr__(self) -> str:
        return f"<FundingTrigger offset={self.offset}>"


class PremiaScheduler:
    """Owns the AsyncIOScheduler and the jobs that drive one engine; start it inside the loop."""

    def __init__(self, engine: Engine, *, clock: Callable[[], datetime] | None = None,
                 on_cycle: Callable[[CycleResult], Any] | None = None, first_poll_now: bool = True) -> None:
        self.engine = engine
        self.settings = engine.settings
        self.store = engine.store
        self.clock = clock or engine.clock
        self.on_cycle = on_cycle  # e.g. poke the outbox pump so new alerts leave at once
        self.first_poll_now = first_poll_now
        self.scheduler: AsyncIOScheduler | None = None
        self._funding: list[FundingEntry] = [(h, t) for _, h, t in engine.funding_schedule()]
        self.jobs: dict[str, Callable[[], Awaitable[tuple[str, str]]]] = {
            "poll": self.poll, "funding": self.after_funding, "fear_greed": self.fear_greed,
            "digest": self.digest, "watchdog": self.watchdog, "markets": self.markets,
        }

    # ── wiring ─────────────────────────────────────────────────────────────────────────────

    def triggers(self) -> dict[str, BaseTrigger]:
        s = self.settings.scheduler
        return {
            "poll": IntervalTrigger(minutes=s.poll_minutes, timezone=UTC),
            "funding": FundingTrigger(lambda: self._funding, timedelta(seconds=s.funding_offset_seconds)),
            "fear_greed": CronTrigger(hour=s.fear_greed_hour_utc, minute=s.fear_greed_minute_utc,
                                      timezone=UTC),
            "digest": CronTrigger(hour=s.digest_hour_utc, minute=0, timezone=UTC),
            "watchdog": IntervalTrigger(minutes=s.watchdog_minutes, timezone=UTC),
            "markets": IntervalTrigger(hours=s.markets_refresh_hours, timezone=UTC),
        }

    def build(self) -> AsyncIOScheduler:
        """The scheduler with every job added (not started)."""
        sched = AsyncIOScheduler(timezone=UTC, job_defaults={"coalesce": True, "max_instances": 1,
                                                             "misfire_grace_time": 30})
        for name, trigger in self.triggers().items():
            extra = {"next_run_time": datetime.now(UTC)} if name == "poll" and self.first_poll_now else {}
            sched.add_job(self.run_job, trigger, args=[name], id=name, name=name,
                          misfire_grace_time=GRACE_S[name], **extra)
        return sched

    def start(self) -> AsyncIOScheduler:
        """Build and start (inside the running event loop)."""
        self.scheduler = self.build()
        self.scheduler.start()
        return self.scheduler

    def shutdown(self) -> None:
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    # ── running and recording ──────────────────────────────────────────────────────────────

    async def run_job(self, name: str) -> str:
        """Run one job and record its run; never raises (the scheduler would only log it)."""
        started = self.clock()
        try:
            outcome, detail = await self.jobs[name]()
        except PremiaError as exc:
            outcome, detail = "failed", scrub_text(str(exc))
            log.warning("job %s failed: %s", name, detail)
        except Exception as exc:
            # One scrubbed line: a traceback would print the exception's text, URLs and all.
            outcome, detail = "failed", describe(exc)
            log.error("job %s failed: %s", name, detail)
            log.debug("job %s traceback", name, exc_info=True)
        try:
            self.store.record_job_run(name, started, self.clock(), outcome, scrub_text(detail)[:500])
        except Exception:
            log.exception("could not record the run of job %s", name)
        return outcome

    async def _cycle(self, why: str) -> tuple[str, str]:
        result = await self.engine.run_cycle()
        if result.snapshot is not None:
            self._funding = [(m.perp.funding_interval_hours, m.perp.next_funding_time)
                             for m in result.snapshot.assets.values() if m.perp is not None]
            self._reschedule_funding()
        if self.on_cycle is not None:
            try:
                self.on_cycle(result)
            except Exception:
                log.exception("on_cycle hook failed")
        return cycle_outcome(result, why)

    def _reschedule_funding(self) -> None:
        """A symbol that moved to a shorter interval gets its settlement job in time."""
        job = self.scheduler.get_job("funding") if self.scheduler is not None else None
        if job is None:
            return
        nxt = job.trigger.get_next_fire_time(None, datetime.now(UTC))
        if job.next_run_time is None or nxt != job.next_run_time:
            job.modify(next_run_time=nxt)

    # ── the jobs (each returns outcome and detail) ─────────────────────────────────────────

    async def poll(self) -> tuple[str, str]:
        return await self._cycle("poll")

    async def after_funding(self) -> tuple[str, str]:
        return await self._cycle("after a funding settlement")

    async def fear_greed(self) -> tuple[str, str]:
        return "ok", await self.engine.feed.refresh_fear_greed(self.clock())

    async def markets(self) -> tuple[str, str]:
        return "ok", await self.engine.feed.refresh_markets(self.clock())

    async def digest(self) -> tuple[str, str]:
        now = self.clock()
        text, table = digest_text(self.engine, now)
        alert_id = self.engine.alerts.digest(text, table, now)
        return "ok", f"digest queued (alert {alert_id})" if alert_id else "digest already sent today"

    async def watchdog(self) -> tuple[str, str]:
        """Heartbeat, expiry of overdue proposals, and one alert when polls stopped arriving."""
        now = self.clock()
        self.store.heartbeat(SCHEDULER_HEARTBEAT, now)
        expired = self.store.expire_proposals(now)
        row = self.store.latest_snapshot()
        limit = timedelta(minutes=3 * self.settings.scheduler.poll_minutes)
        fresh = row is not None and now - row[1] <= limit
        since = f"since {row[1]:%Y-%m-%d %H:%M} UTC" if row else "yet"
        detail = "" if fresh else f"no market snapshot {since}"
        self.engine.alerts.health([FeedStatus(POLLING, fresh, detail)], now)
        note = f"; expired {', '.join(expired)}" if expired else ""
        return ("ok" if fresh else "failed"), (detail or "polls on time") + note


def cycle_outcome(result: CycleResult, why: str) -> tuple[str, str]:
    """(outcome, detail) of a cycle for the job log: failed without data, skipped when paused."""
    parts = [why]
    if result.proposal is not None:
        parts.append(f"proposal {result.proposal.id}")
    if result.evaluation is not None:
        parts.append(f"{len(result.evaluation.triggers)} trigger(s)")
    parts.append(f"{len(result.alerts)} alert(s), {len(result.failures)} failure(s)")
    if result.skipped:
        parts.append(result.skipped)
    if result.snapshot is None:
        return "failed", "; ".join(parts)
    return ("skipped" if result.skipped else "ok"), "; ".join(parts)


def digest_text(engine: Engine, now: datetime) -> tuple[str, dict[str, Any] | None]:
    """The daily summary: value, exposure, Fear & Greed, rule states, the open proposal, feeds down."""
    from core.feeds.fear_greed import FEAR_GREED_ATTRIBUTION

    settings, store = engine.settings, engine.store
    view = engine.latest()
    lines = [f"Daily digest, {now:%Y-%m-%d} · strategy {settings.strategy.name} · {settings.mode} mode"]
    table = None
    if view is None:
        lines.append("No market snapshot yet.")
    else:
        snapshot, _, ev = view
        v = ev.valuation
        lines.append(f"Portfolio {v.value:,.2f} {settings.quote}"
                     f" · net futures {pct(v.net_futures_exposure, 1)} · hedged {pct(v.hedged_share, 1)}"
                     f" · as of {snapshot.as_of:%H:%M} UTC")
        if snapshot.fear_greed is not None:
            fg = snapshot.fear_greed
            lines.append(f"Fear & Greed {fg.value} ({fg.label}) — {FEAR_GREED_ATTRIBUTION}")
        held = sorted(f"{k}: {s.state}" for k, s in ev.states.items() if s.state not in ("normal", "low"))
        if held:
            lines.append("Rules holding a state: " + ", ".join(held))
        assets = sorted(set(ev.targets.assets) | {a for a, x in v.spot_value.items() if x})
        rows = [[a, pct(v.weight(a), 1), pct(ev.targets.spot_weight(a), 1),
                 "-" if (apr := _apr(snapshot, a)) is None else pct(apr, 1)] for a in assets]
        table = {"headers": ["asset", "weight", "target", "funding APR"], "rows": rows}
    open_now = store.open_proposals(now)
    lines.append(f"Open proposal {open_now[-1].id}: /plan to see it." if open_now else "No open proposal.")
    down = engine.alerts.feeds_down()
    if down:
        lines.append("Down: " + ", ".join(f"{n} since {str(h.get('since', '?'))[:16]}"
                                          for n, h in sorted(down.items())))
    return "\n".join(lines), table


def _apr(snapshot: Any, asset: str) -> Decimal | None:
    from core.signals import funding_apr

    m = snapshot.assets.get(asset)
    if m is None or m.perp is None:
        return None
    return funding_apr(m.perp.funding_rate, m.perp.funding_interval_hours)
