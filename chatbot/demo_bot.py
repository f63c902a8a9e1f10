"""The bot `premia demo` runs: the real engine, outbox, console and executor on a replay clock.

    ReplayFeed ──► Engine.run_cycle() (one per replayed day) ──► proposals, rule states, outbox
                      ▲ PaperBook (the store's paper book)            │
                      │                                               ▼ AlertPump → AlertRenderer
    PaperBroker ◄── Executor ◄── CommandDispatcher ◄── "/approve ID" typed on the ConsoleAdapter

Everything lives in a private in-memory store (the user's store is never written), and every
clock is the replay's: the snapshot time of the day being replayed. The paper book the engine
values (PaperBook) is the one the paper broker trades (both read `store.get_paper_book`).

What a live exchange does on its own and the paper broker does not, the demo does between
cycles with the backtest's own book-keeping (core.backtest_sim.Simulation): funding settled on
open perpetuals, variation margin to the day's marks, and a margin call that sells spot when
the futures losses leave the quote balance negative.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import TextIO

from chatbot.alert_render import AlertPump, AlertRenderer
from chatbot.commands import CommandDispatcher
from chatbot.console import ConsoleAdapter
from chatbot.handlers import Services
from chatbot.replies import Reply
from core.backtest_sim import Simulation
from core.brokers.paper import PaperBroker
from core.config import Settings
from core.engine import CycleResult, Engine
from core.execution import Executor
from core.execution_report import ExecutionReport
from core.market_feed import ReplayFeed
from core.models import MarketSnapshot, Portfolio
from core.portfolio import Valuation, value_portfolio
from core.portfolio_source import PaperBook
from core.store import Store

TRANSPORT = "console"
CHAT_ID = "demo"
HEARTBEAT_DAYS = 30
MARGIN = "            "  # continuation lines line up under the text after "YYYY-MM-DD  WORD  "

# Asked for each proposal an alert offers: returns the line the demo user types at the console
# ("/approve ID" or "/reject ID"); `run` serves any other command typed meanwhile.
Answer = Callable[[str, "DemoBot"], Awaitable[str]]


@dataclass
class Tally:
    alerts: int = 0
    proposals: set[str] = field(default_factory=set)  # made by the engine (with or without alert)
    offered: int = 0  # proposals an alert offered with Approve/Reject buttons
    approved: int = 0
    declined: int = 0
    refused: int = 0  # approved, but the executor said no (re-check, caps, balances)
    fills: int = 0


class RecordingExecutor:
    """The real Executor, keeping each execution report for the demo's book-keeping."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor
        self.reports: dict[str, ExecutionReport] = {}

    async def approve(self, proposal_id: str, actor: str, via: str,
                      chat_id: str | None = None) -> ExecutionReport:
        report = await self.executor.approve(proposal_id, actor, via, chat_id)
        self.reports[proposal_id] = report
        return report

    async def reject(self, proposal_id: str, actor: str, via: str, chat_id: str | None = None) -> str:
        return await self.executor.reject(proposal_id, actor, via, chat_id)

    async def reconcile(self) -> list[str]:
        return await self.executor.reconcile()


class ConsoleNotifier:
    """The console as an outbox transport: each alert printed as `premia chat` prints a reply."""

    transport = TRANSPORT

    def __init__(self, bot: DemoBot) -> None:
        self.bot = bot

    async def send(self, chat_id: str, reply: Reply) -> None:
        bot = self.bot
        bot.tally.alerts += 1
        bot.say("ALERT", await bot.console.render(reply))
        for button in reply.buttons:
            verb, _, pid = button.action.partition(":")
            if verb == "approve" and pid and pid not in bot.offered:
                bot.offered.append(pid)


class DemoBot:
    """One paper book replayed day by day through the engine, the outbox and the console."""

    def __init__(self, settings: Settings, feed: ReplayFeed, out: TextIO, *, initial: Decimal,
                 answer: Answer, speed: float = 0.0) -> None:
        self.settings = settings
        self.out = out
        self.answer = answer
        self.speed = speed
        self.initial = initial
        self.store = Store.memory()
        self.feed = feed
        clock = self.feed.now  # the replay's clock: the end of the day being replayed
        self.clock = clock
        self.book = PaperBook(settings, self.store, clock)
        self.book.put(Portfolio({settings.quote: initial}))
        self.broker = PaperBroker(settings, self.store, clock)
        self.engine = Engine(settings, self.store, self.feed, self.book, clock)
        self.executor = RecordingExecutor(Executor(settings, self.store, self.broker,
                                                   self.engine.refresh, clock))
        services = Services(settings, self.store, engine=self.engine, executor=self.executor,
                            clock=clock)
        self.console = ConsoleAdapter(CommandDispatcher(services), out,
                                      image_dir=settings.data_dir / "demo-images")
        self.store.subscribe(TRANSPORT, CHAT_ID, clock())
        self.pump = AlertPump(self.store, [ConsoleNotifier(self)],
                              AlertRenderer(self.store, settings, clock), clock)
        # Funding, variation margin and margin calls, as the backtest settles them.
        self.sim = Simulation(settings, settings.strategy, self.feed.replay,
                              Portfolio({settings.quote: initial}))
        self.tally = Tally()
        self.offered: list[str] = []  # proposal ids the alerts just delivered offer to approve
        self.cycles: list[CycleResult] = []
        self.day = self.feed.days[0]

    @property
    def days(self) -> tuple[date, ...]:
        return self.feed.days

    def say(self, word: str, text: str) -> None:
        lines = text.splitlines() or [""]
        head = f"{self.day}  {word.ljust(5)}  {lines[0]}"
        self.out.write("\n".join([head, *(MARGIN + line for line in lines[1:])]) + "\n")
        self.out.flush()

    def valuation(self, snapshot: MarketSnapshot | None = None) -> Valuation:
        snap = snapshot or self.feed.replay.snapshot(self.day)
        return value_portfolio(self.book.read(), snap, self.settings.stablecoins)

    # ── one replayed day ─────────────────────────────────────────────────────────────────────

    async def run(self) -> None:
        await self.executor.reconcile()  # nothing in flight in a fresh store, but it is the rule
        i = 0
        while True:
            started = time.monotonic()
            await self.step(i)
            if self.speed > 0:
                await asyncio.sleep(max(0.0, 1 / self.speed - (time.monotonic() - started)))
            if not self.feed.advance():
                break
            i += 1

    async def step(self, i: int) -> None:
        self.day = self.feed.days[self.feed.position]
        snap = self.feed.replay.snapshot(self.day)  # what the feed serves the engine today
        self._settle(snap)
        result = await self.engine.run_cycle()
        self.cycles.append(result)
        if result.proposal is not None:
            self.tally.proposals.add(result.proposal.id)
        if i % HEARTBEAT_DAYS == 0 and result.evaluation is not None:
            prices = " · ".join(f"{a} {m.spot.price:,.2f}" for a, m in snap.assets.items() if m.spot)
            value = result.evaluation.valuation.value
            self.say("·····", f"book {value:,.0f} {self.settings.quote} · {prices}")
        self.offered.clear()
        await self.pump.drain_once()  # the outbox to this console, as the bot's pump does
        for pid in list(self.offered):
            await self.decide(pid, snap)

    def _settle(self, snap: MarketSnapshot) -> None:
        """Funding and futures P&L since yesterday on the paper book (a margin call if needed)."""
        before = self.book.read()
        self.sim.portfolio = before
        self.sim.settle(snap)
        if self.sim.portfolio != before:
            self.book.put(self.sim.portfolio)

    async def decide(self, pid: str, snap: MarketSnapshot) -> None:
        """The demo user's answer, typed at the console like in `premia chat`."""
        self.tally.offered += 1
        line = await self.answer(pid, self)
        self.say("YOU", f"{self.console.prompt}{line}")
        self.say("REPLY", await self.console.run_line(line))
        if not line.startswith("/approve"):
            self.tally.declined += 1
            return
        report = self.executor.reports.pop(pid, None)
        if report is None:
            self.tally.refused += 1
            return
        self.tally.approved += 1
        self.tally.fills += sum(1 for f in report.fills if f.filled)
        self._adopt(report, snap)
        v = self.valuation(snap)
        self.say("BOOK", f"value {v.value:,.0f} {self.settings.quote} "
                         f"({v.value / self.initial - 1:+.1%} since the start), executed on paper")

    def _adopt(self, report: ExecutionReport, snap: MarketSnapshot) -> None:
        """Futures filled at a price off the mark: the difference settled now as margin."""
        sp = self.store.get_proposal(report.proposal_id)
        sizes = {o.leg: o.contract_size for o in sp.proposal.orders} if sp else {}
        futures = [(f.symbol, f.filled if f.side == "buy" else -f.filled, sizes.get(f.leg, Decimal(1)),
                    f.avg_price)
                   for f in report.fills if f.market != "spot" and f.filled and f.avg_price]
        traded = sum((f.filled * (f.avg_price or 0) * sizes.get(f.leg, Decimal(1)) for f in report.fills),
                     Decimal(0))
        before = self.book.read()
        self.sim.adopt(before, futures, report.fees, traded, snap)
        if self.sim.portfolio != before:
            self.book.put(self.sim.portfolio)

    async def run_command(self, line: str) -> None:
        """Any other command the demo user types while asked (e.g. /status, /plan)."""
        self.say("YOU", f"{self.console.prompt}{line}")
        self.say("REPLY", await self.console.run_line(line))

    def delivered_everything(self) -> bool:
        """Whether every outbox row the engine wrote reached this console."""
        return not self.store.pending_alerts(TRANSPORT, self.clock(), limit=1)
