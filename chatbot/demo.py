"""`premia demo`: a volatile stretch of market history replayed through the bot in a minute.

    premia demo [--config FILE] [--from DATE] [--to DATE] [--speed N] [--auto-approve]
                [--preset NAME] [--data DIR]

No tokens and no network: history comes from the store, else the CSVs of ../shared/data, else
a simulated market, and the demo says which. Each day goes through the live pieces: evaluate →
plan → a proposal saved in a private in-memory store → an alert through its outbox, rendered by
the alert renderer as the console shows it → your approval (or --auto-approve) handed to the
Executor, which re-checks the market, starts the proposal exactly once and trades it with the
PaperBroker → the execution report and the new weights. A summary table with the backtest of
the same days (and its baselines) ends it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TextIO

from chatbot.cli_backtest import _amount, _day, chosen_presets
from core.backtest_data import History
from core.config import Settings
from core.models import Portfolio, Proposal, Trigger

DEFAULT_FROM = date(2021, 5, 1)  # the May 2021 crash, the autumn top, LUNA and FTX in 2022
DEFAULT_TO = date(2022, 12, 31)
WARMUP = timedelta(days=90)  # closes and funding before the first day, so rules can judge it
HEARTBEAT_DAYS = 30
TRANSPORT = "console"
ACTOR = "you"

Approver = Callable[[Proposal], bool]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="TOML config file (default: $PREMIA_CONFIG or the example)")
    parser.add_argument("--from", dest="start", type=_day, default=DEFAULT_FROM,
                        help=f"first day (default {DEFAULT_FROM})")
    parser.add_argument("--to", dest="end", type=_day, default=DEFAULT_TO,
                        help=f"last day (default {DEFAULT_TO})")
    parser.add_argument("--speed", type=float, default=40.0,
                        help="market days replayed per second (default 40; 0 = as fast as possible)")
    parser.add_argument("--auto-approve", action="store_true",
                        help="approve every proposal on paper without asking")
    parser.add_argument("--preset", help="strategy preset (default: the config's)")
    parser.add_argument("--data", type=Path,
                        help="folder with history CSVs instead of the store or shared data")
    parser.add_argument("--initial", type=_amount, default=Decimal(100_000),
                        help="starting paper value in the quote currency (default 100000)")


@dataclass
class Tally:
    alerts: int = 0
    proposals: int = 0
    approved: int = 0
    declined: int = 0
    fills: int = 0


def _trigger_dict(t: Trigger) -> dict:
    return {"rule": t.rule, "asset": t.asset, "explanation": t.explanation, "values": dict(t.values),
            "state_from": t.state_from, "state_to": t.state_to}


def console_text(reply) -> str:
    """A reply as the console adapter prints it: plain text, buttons as commands to type."""
    from chatbot.console import action_to_command

    text = replace(reply, buttons=()).as_plain_text()
    if reply.buttons:
        text += "\n" + "  ".join(f"[{b.label} → {action_to_command(b.action)}]" for b in reply.buttons)
    return text


class Demo:
    """One paper book replayed day by day, talking through the store's outbox like the bot."""

    def __init__(self, settings: Settings, history: History, out: TextIO, *, initial: Decimal,
                 approve: Approver, speed: float = 0.0) -> None:
        from chatbot.alert_render import AlertRenderer
        from core.backtest_sim import Simulation
        from core.brokers.paper import PaperBroker
        from core.execution import Executor
        from core.replay import Replay
        from core.store import Store

        self.settings = settings
        self.out = out
        self.speed = speed
        self.approve = approve
        self.store = Store.memory()
        self.now = datetime.min
        self.day = date.min  # the day whose close is being replayed: what every line is labelled
        self.render = AlertRenderer(self.store, settings, clock=lambda: self.now)
        # A live-sized window (feeds.history_days), exactly what the running bot's snapshots hold.
        self.replay = Replay(history.frame, settings, history.perp_closes)
        self.sim = Simulation(settings, settings.strategy, self.replay,
                              Portfolio({settings.quote: initial}))
        self.tally = Tally()
        self.snapshot = None  # the market "now": what the executor's re-check fetches
        clock = lambda: self.now  # noqa: E731 - the replayed time is the only clock here
        self.broker = PaperBroker(settings, self.store, clock)
        self.executor = Executor(settings, self.store, self.broker, self._refresh, clock)

    async def _refresh(self):
        return self.snapshot

    def say(self, text: str, indent: str = "            ") -> None:
        lines = text.splitlines() or [""]
        self.out.write("\n".join([lines[0], *(indent + line for line in lines[1:])]) + "\n")
        self.out.flush()

    def deliver(self) -> None:
        """Drain the outbox to the console, as the delivery loop does for each transport."""
        for alert in self.store.pending_alerts(TRANSPORT, self.now):
            self.tally.alerts += 1
            self.say(f"{self.day}  ALERT  " + console_text(self.render(alert)))
            self.store.mark_delivered(alert["id"], TRANSPORT, self.now)

    async def step(self, i: int, day: date) -> None:
        snap = self.replay.snapshot(day)
        self.now, self.day, self.snapshot = snap.as_of, day, snap
        self.sim.settle(snap)
        ev = self.sim.evaluate(snap)
        if i % HEARTBEAT_DAYS == 0:
            prices = " · ".join(f"{a} {m.spot.price:,.2f}" for a, m in snap.assets.items() if m.spot)
            self.say(f"{day}  ·····  book {ev.valuation.value:,.0f} {self.settings.quote} · {prices}")
        if not ev.triggers:
            return
        proposal = self.sim.propose(ev, snap, f"P-{day:%y%m%d}")
        changes = [t for t in ev.triggers if t.state_to is not None]
        if not proposal.orders:
            if changes:  # a regime moved but there is nothing to trade: still worth an alert
                self.store.enqueue_alert(f"rules:{day}", "trigger",
                                         {"triggers": [_trigger_dict(t) for t in changes]},
                                         self.now, timedelta(0))
                self.deliver()
            return
        self.store.save_proposal(proposal)
        self.store.enqueue_alert(f"proposal:{proposal.id}", "proposal",
                                 {"triggers": [_trigger_dict(t) for t in ev.triggers],
                                  "proposal_id": proposal.id}, self.now, timedelta(0))
        self.tally.proposals += 1
        self.deliver()
        await self.decide(proposal, snap)

    async def decide(self, proposal: Proposal, snap) -> None:
        """Your answer through the executor: re-checked, started once, filled by the paper broker."""
        from core.codec import portfolio_to_dict
        from core.errors import ExecutionError

        pid, day, q = proposal.id, self.day, self.settings.quote
        if not self.approve(proposal):
            self.tally.declined += 1
            self.say(f"{day}  REJECTED  " + await self.executor.reject(pid, ACTOR, TRANSPORT))
            return
        # The paper broker trades the store's paper book: hand it today's book (funding and
        # futures P&L settled), then take back what it traded.
        self.store.put_paper_book(portfolio_to_dict(self.sim.portfolio), self.now)
        try:
            report = await self.executor.approve(pid, ACTOR, TRANSPORT)
        except ExecutionError as exc:
            self.say(f"{day}  REFUSED  {exc}")
            return
        self.tally.approved += 1
        self.say(f"{day}  APPROVED  {pid} by {ACTOR} on the {TRANSPORT}; executed on paper")
        sizes = {o.leg: o.contract_size for o in proposal.orders}
        futures = [(f.symbol, f.filled if f.side == "buy" else -f.filled, sizes[f.leg], f.avg_price)
                   for f in report.fills if f.market != "spot" and f.filled and f.avg_price]
        traded = sum((f.filled * (f.avg_price or 0) * sizes[f.leg] for f in report.fills), Decimal(0))
        self.sim.adopt(self.broker.book(), futures, report.fees, traded, snap)
        filled = [f for f in report.fills if f.filled]
        self.tally.fills += len(filled)
        lines = [f"{day}  FILLED  {len(filled)}/{len(report.fills)} legs of {pid} "
                 f"({report.status.replace('_', ' ')}), fees {report.fees:,.2f} {q}"]
        for f in report.fills:
            what = (f"at {f.avg_price:,.4f}" if f.avg_price else f.status)
            lines.append(f"{f.side} {f.filled.normalize():f} of {f.planned.normalize():f} {f.symbol} {what}"
                         + (f" ({f.message})" if f.message else ""))
        lines.extend(report.messages)
        valuation = self.sim_valuation(snap)
        lines.append("weights now: " + " · ".join(
            f"{a} {w:.1%}" for a, w in sorted(valuation.weights.items(), key=lambda kv: -kv[1]) if w)
            + f" · net futures {valuation.net_futures_exposure:+.1%}"
            + f" · value {valuation.value:,.0f} {q}")
        self.say("\n".join(lines))

    def sim_valuation(self, snap):
        from core.portfolio import value_portfolio

        return value_portfolio(self.sim.portfolio, snap, self.settings.stablecoins)

    async def run(self, days: tuple[date, ...]) -> None:
        await self.executor.reconcile()  # nothing in flight in a fresh store, but it is the rule
        for i, day in enumerate(days):
            started = time.monotonic()
            await self.step(i, day)
            if self.speed > 0:
                await asyncio.sleep(max(0.0, 1 / self.speed - (time.monotonic() - started)))


def _approver(auto: bool, out: TextIO) -> Approver:
    if auto:
        return lambda _p: True
    if not sys.stdin.isatty():
        told = False

        def decline(_p: Proposal) -> bool:
            nonlocal told
            if not told:
                out.write("(no terminal to ask you: proposals stay unapproved; use --auto-approve)\n")
                told = True
            return False
        return decline

    def ask(p: Proposal) -> bool:
        answer = input(f"Approve {p.id} ({len(p.orders)} orders)? [y/N] ").strip().lower()
        return answer in ("y", "yes")
    return ask


def run(args: argparse.Namespace) -> int:
    from core.backtest import preset_settings, run_backtest, trading_days
    from core.backtest_data import find_history
    from core.config import load_settings
    from core.errors import ConfigError

    if args.end < args.start:
        raise ConfigError(f"--to {args.end} is before --from {args.start}")
    settings = load_settings(args.config)
    if args.preset:
        settings = preset_settings(settings, chosen_presets(args.preset)[0])
    out = sys.stdout
    assets = list(settings.assets)
    history = find_history(settings, assets, args.start - WARMUP, args.end, args.data,
                           allow_simulated=True)
    demo = Demo(settings, history, out, initial=args.initial,
                approve=_approver(args.auto_approve, out), speed=args.speed)
    days, notes = trading_days(demo.replay, args.start, args.end)
    out.write(f"Premia demo: {settings.strategy.name} ({settings.strategy.title}) on paper, "
              f"{days[0]} → {days[-1]} ({len(days)} days), start {args.initial:,.0f} {settings.quote}\n"
              f"Market data: {history.description}\n"
              f"Assets: {', '.join(assets)}. No tokens, no network; alerts go through an in-memory "
              f"store's outbox to this console.\n")
    for note in notes:
        out.write(f"note: {note}\n")
    out.write("\n")
    asyncio.run(demo.run(days))
    result = run_backtest(history.frame, settings, settings.strategy.name, days[0], days[-1],
                          initial_value=args.initial, perp_closes=history.perp_closes)
    _summary(out, demo, result)
    return 0


def _summary(out: TextIO, demo: Demo, result) -> None:
    from chatbot.replies import Table
    from core.backtest import TABLE_HEADERS, table_rows

    t = demo.tally
    snap = demo.replay.snapshot(result.end)
    value = demo.sim_valuation(snap).value
    start = result.strategy.initial_value
    out.write(f"\nDone: {t.alerts} alerts, {t.proposals} proposals, {t.approved} approved, "
              f"{t.declined} not approved, {t.fills} fills. Your paper book: {value:,.2f} "
              f"{demo.settings.quote} ({value / start - 1:+.1%}).\n\n")
    out.write(Table(TABLE_HEADERS, tuple(table_rows(result))).as_text() + "\n")
    out.write("The strategy row approves every proposal; buy-and-hold, monthly and bands-only are "
              "the same allocation without the rules.\n")
