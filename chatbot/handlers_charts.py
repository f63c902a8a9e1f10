"""Commands that draw: /chart allocation|funding|basis and /backtest.

matplotlib and the backtest are imported on first use (they cost seconds and tens of MB) and run
in a worker thread, so the event loop keeps serving chats and the scheduler meanwhile.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal

from chatbot import format as fmt
from chatbot import parsing
from chatbot.handlers import Request, Services, latest, open_proposal
from chatbot.replies import Image, Reply, Table
from core.errors import CommandError
from core.signals import funding_apr

KINDS = ("allocation", "funding", "basis")
FUNDING_DAYS = 30
BASIS_DAYS = 90
WARMUP = timedelta(days=90)
_BACKTEST_LOCK = asyncio.Lock()  # one at a time: a backtest holds a CPU and ~100 MB


def _reference_asset(s: Services, arg: str | None) -> str:
    known = list(s.settings.assets)
    if arg is not None:
        return parsing.asset(arg, known)
    ref = s.settings.strategy.rules.funding_regime.reference_asset
    return ref if ref in known else known[0]


def _prints(s: Services, asset: str, now: datetime, days: int) -> tuple[list[tuple[datetime, Decimal]], str]:
    """Settled funding prints of the asset's perpetual: the store's history, else the snapshot's."""
    symbol = s.settings.perp_symbol(asset)
    if not symbol:
        raise CommandError(f"{asset} has no perpetual in the config, so it has no funding.")
    rows = s.store.funding_history(symbol, now - timedelta(days=days), now)
    if rows:
        return rows, symbol
    view = s.engine.latest() if s.engine is not None else None
    market = view[0].assets.get(asset) if view is not None else None
    if market is not None and market.perp is not None:
        since = now - timedelta(days=days)
        return [(p.time, p.rate) for p in market.perp.funding_history if p.time >= since], symbol
    return [], symbol


def _daily_apr(prints: list[tuple[datetime, Decimal]]) -> list[tuple[date, Decimal]]:
    """Mean funding APR per day: seed 002's annualized premium of a perpetual."""
    by_day: dict[date, list[Decimal]] = defaultdict(list)
    ordered = sorted(prints)
    for i, (t, rate) in enumerate(ordered):
        gap = (t - ordered[i - 1][0]).total_seconds() / 3600 if i else 8.0
        hours = Decimal(round(gap)) if 1 <= gap <= 8 else Decimal(8)
        by_day[t.date()].append(funding_apr(rate, hours))
    return [(d, sum(v, Decimal(0)) / len(v)) for d, v in sorted(by_day.items())]


async def chart(req: Request) -> Reply:
    """A PNG: allocation against targets, funding APR with thresholds, or the premium bands."""
    req.need_args(1, 2)
    kind = parsing.choice(req.args[0], KINDS, "chart")
    s, now = req.services, req.now
    from chatbot import charts  # matplotlib: only when a chart is asked for

    if kind == "allocation":
        if len(req.args) > 1:
            raise req.usage_error("/chart allocation takes no asset.")
        snapshot, _portfolio, ev = latest(s)
        before = ev.valuation.weights
        op = open_proposal(s, now)
        after = op.proposal.weights_after if op is not None else before
        title = f"Allocation · {op.id}" if op is not None else "Allocation now"
        png = await asyncio.to_thread(charts.allocation_chart, before, after,
                                      ev.targets.as_weights(s.settings.quote), title)
        caption = f"{title}: bars now/after, black marks the target · {fmt.clock(snapshot.as_of, now)}"
        return Reply(text="", image=Image(png, "allocation.png", caption))
    asset = _reference_asset(s, req.arg(1))
    if kind == "funding":
        prints, symbol = _prints(s, asset, now, FUNDING_DAYS)
        rules = s.settings.strategy.rules
        thresholds = {"enter": rules.funding_regime.enter_apr, "exit": rules.funding_regime.exit_apr}
        title = f"{asset} funding APR, {FUNDING_DAYS} d"
        png = await asyncio.to_thread(charts.funding_chart, prints, thresholds, title)
        note = "" if prints else " (no prints stored yet)"
        return Reply(text="", image=Image(png, f"funding-{asset.lower()}.png", f"{title} · {symbol}{note}"))
    prints, symbol = _prints(s, asset, now, BASIS_DAYS)
    cfg = s.settings.strategy.rules.premium_regime
    thresholds = {"accumulate_below": cfg.accumulate_below, "basis_above": cfg.basis_above,
                  "derisk_above": cfg.derisk_above}
    title = f"{asset} annualized premium, {BASIS_DAYS} d"
    png = await asyncio.to_thread(charts.basis_chart, _daily_apr(prints), thresholds, title)
    return Reply(text="", image=Image(png, f"basis-{asset.lower()}.png",
                                      f"{title} · daily mean funding APR of {symbol}"))


# ── /backtest ───────────────────────────────────────────────────────────────────────────────


def _presets() -> list[str]:
    from core.config import load_presets

    return sorted(load_presets())


async def backtest(req: Request) -> Reply:
    """Replay history through a preset beside its baselines: a table and the equity curves."""
    req.need_args(1, 3)
    s = req.services
    preset = parsing.choice(req.args[0], _presets(), "preset")
    end = parsing.day(req.args[2]) if len(req.args) > 2 else req.now.date()
    start = parsing.day(req.args[1]) if len(req.args) > 1 else end - timedelta(days=365)
    if start >= end:
        raise req.usage_error("FROM must be before TO.")
    if _BACKTEST_LOCK.locked():
        raise CommandError("A backtest is already running; try again when it has finished.")
    async with _BACKTEST_LOCK:
        rows, curves, result, source = await asyncio.to_thread(_run, s, preset, start, end)
        from chatbot import charts

        title = f"{preset} {result.start:%Y-%m-%d} → {result.end:%Y-%m-%d}"
        png = await asyncio.to_thread(charts.equity_chart, curves, title)
    table = Table(("run", "final", "CAGR", "max DD", "Sharpe"), tuple(r[1:6] for r in rows))
    initial = next(iter(result.runs.values())).initial_value
    notes = [f"Start {fmt.money(initial, 0)} {s.settings.quote} on paper; baselines beside the preset",
             f"Data: {source}"]
    notes += [f"• {n}" for n in result.notes[:3]]
    return Reply(title=f"Backtest {title}", text="\n".join(notes), tables=(table,),
                 image=Image(png, f"backtest-{preset}.png", title))


def _run(s: Services, preset: str, start: date, end: date) -> tuple:
    from core.backtest import backtest_reply_data, run_backtest
    from core.backtest_data import find_history

    assets = list(s.settings.assets)
    # Loaded from before `start`, so the rules have their look-back windows on the first day.
    history = find_history(s.settings, assets, start - WARMUP, end, s.history_dir)
    if not history.frame.days:
        raise CommandError(f"No history between {start} and {end}.")
    result = run_backtest(history.frame, s.settings, preset, start, end, perp_closes=history.perp_closes)
    rows, curves = backtest_reply_data(result)
    return rows, curves, result, history.description
