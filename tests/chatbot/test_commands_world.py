"""A small world for command tests: settings, a real SQLite store file, an engine, the dispatcher.

Imported by the command, auth, fuzz and app tests; it holds no tests itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from chatbot.commands import CommandDispatcher
from chatbot.console import ConsoleAdapter
from chatbot.handlers import Services
from chatbot.replies import Caller, Reply
from core.brokers.paper import PaperBroker
from core.config import Settings, settings_from_dict
from core.errors import ExecutionError
from core.evaluate import Evaluation, evaluate
from core.execution import Executor
from core.execution_report import ExecutionReport, LegFill
from core.models import MarketSnapshot, Portfolio, Proposal
from core.planner import plan
from core.snapshot_io import parse_snapshot
from core.store import Store
from tests import scenarios as sc

TRADER = Caller("telegram", "1001", "1001", "Alice")
VIEWER = Caller("telegram", "2002", "2002", "Victor")
STRANGER = Caller("telegram", "6666", "6666", "Mallory")
GROUP_TRADER = Caller("telegram", "1001", "-100500", "Alice")
DISCORD_TRADER = Caller("discord", "42", "9000", "Dee")
NOW = sc.AS_OF + timedelta(minutes=2)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


def settings_for(**over: Any) -> Settings:
    raw: dict[str, Any] = {
        "strategy": {"preset": "balanced-aggression"},
        "assets": sc.FOUR,
        "chat": {"telegram": {"traders": [1001], "viewers": [2002]},
                 "discord": {"traders": [42], "viewers": []}},
        "exchanges": {"binance": {"api_key_env": "BINANCE_API_KEY", "secret_env": "BINANCE_SECRET"}},
    }
    raw.update(over)
    return settings_from_dict(raw)


DRIFTED = {"BTC": 0.5, "ETH": 0.1, "SOL": 0.1, "USDT": 0.3}


def drifted_doc(fear_greed: int = 20) -> dict[str, Any]:
    """Four assets; BTC far overweight, XRP missing: the drift rule fires."""
    return sc.snapshot(sc.four_assets(), sc.units(DRIFTED), fear_greed=fear_greed)


def paper_settings() -> Settings:
    """Settings whose paper book starts as the drifted portfolio."""
    return settings_for(paper={"balances": {a: str(v) for a, v in sc.units(DRIFTED).items()}})


def balanced_doc() -> dict[str, Any]:
    return sc.snapshot(sc.four_assets(), sc.units({"BTC": 0.24, "ETH": 0.16, "SOL": 0.2, "XRP": 0.2,
                                                   "USDT": 0.2}), fear_greed=50)


def parse(doc: dict[str, Any]) -> tuple[MarketSnapshot, Portfolio]:
    snap, portfolio, _ = parse_snapshot(json.loads(json.dumps(doc), parse_float=Decimal))
    return snap, portfolio


class SnapshotEngine:
    """Serves one market snapshot (the paper book's portfolio when there is a paper broker)."""

    def __init__(self, settings: Settings, store: Store, doc: dict[str, Any] | None,
                 broker: PaperBroker | None = None) -> None:
        self.settings, self.store, self.broker = settings, store, broker
        self.view = parse(doc) if doc is not None else None
        self.fresh_calls = 0

    def _now(self) -> tuple[MarketSnapshot, Portfolio]:
        assert self.view is not None
        snap, portfolio = self.view
        return snap, self.broker.book() if self.broker is not None else portfolio

    def latest(self) -> tuple[MarketSnapshot, Portfolio, Evaluation] | None:
        if self.view is None:
            return None
        snap, portfolio = self._now()
        return snap, portfolio, evaluate(snap, portfolio, self.settings, {})

    async def fresh_plan(self) -> tuple[Evaluation, Proposal]:
        self.fresh_calls += 1
        snap, portfolio = self._now()
        ev = evaluate(snap, portfolio, self.settings, {})
        return ev, plan(ev, snap, portfolio, self.settings, strategy=self.settings.strategy.name)

    async def run_cycle(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def refresh(self) -> MarketSnapshot:
        """The market as the executor re-reads it on approval."""
        return self._now()[0]


@dataclass
class FakeExecutor:
    """Records approvals; marks the proposal executed like the real one would."""

    store: Store
    clock: Clock
    calls: list[tuple[str, str, str, str | None]] = field(default_factory=list)
    refuse_with: ExecutionError | None = None

    async def approve(self, proposal_id: str, actor: str, via: str, chat_id: str | None) -> ExecutionReport:
        self.calls.append((proposal_id, actor, via, chat_id))
        if self.refuse_with is not None:
            raise self.refuse_with
        now = self.clock()
        assert self.store.transition(proposal_id, "proposed", "approved", now, actor, via, chat_id=chat_id)
        self.store.transition(proposal_id, "approved", "executed", now, "system", "executor")
        sp = self.store.get_proposal(proposal_id)
        assert sp is not None
        fills = tuple(LegFill(o.leg, o.symbol, o.market, o.side, o.amount, o.amount, o.limit_price, o.est_fee,
                              Decimal("0.0005"), "filled") for o in sp.proposal.orders)
        return ExecutionReport(proposal_id, "executed", fills, Decimal("1.25"), sp.proposal.weights_after,
                               Decimal(0), fees=sum((f.fee for f in fills), Decimal(0)))

    async def reconcile(self) -> list[str]:
        return []

    async def reject(self, proposal_id: str, actor: str, via: str, chat_id: str | None) -> str:
        ok = self.store.transition(proposal_id, "proposed", "rejected", self.clock(), actor, via,
                                   chat_id=chat_id)
        if not ok:
            raise ExecutionError(f"{proposal_id} cannot be rejected now")
        return "Nothing was traded."


@dataclass
class World:
    settings: Settings
    store: Store
    engine: SnapshotEngine
    executor: Any
    clock: Clock
    dispatcher: CommandDispatcher

    async def say(self, text: str, who: Caller = TRADER) -> Reply:
        return await self.dispatcher.handle_text(who, text)

    async def press(self, action: str, who: Caller = TRADER) -> Reply:
        return await self.dispatcher.handle_action(who, action)

    def console(self, tmp_path: Path) -> ConsoleAdapter:
        return ConsoleAdapter(self.dispatcher, image_dir=tmp_path / "images")


def make_world(tmp_path: Path, doc: dict[str, Any] | None = None, *, executor: bool = True,
               settings: Settings | None = None) -> World:
    """A world with a fake executor (or none)."""
    settings = settings or settings_for()
    store = Store.open(tmp_path / "premia.db")
    clock = Clock()
    engine = SnapshotEngine(settings, store, drifted_doc() if doc is None else doc)
    ex = FakeExecutor(store, clock) if executor else None
    services = Services(settings, store, engine, ex, clock=clock)
    return World(settings, store, engine, ex, clock, CommandDispatcher(services))


async def paper_world(tmp_path: Path) -> World:
    """A world with the real Executor and PaperBroker over the paper book in the store."""
    settings = paper_settings()
    store = Store.open(tmp_path / "premia.db")
    clock = Clock()
    broker = PaperBroker(settings, store, clock)
    engine = SnapshotEngine(settings, store, drifted_doc(), broker)
    ex = Executor(settings, store, broker, engine.refresh, clock)
    await ex.reconcile()
    services = Services(settings, store, engine, ex, clock=clock)
    return World(settings, store, engine, ex, clock, CommandDispatcher(services))


@pytest.fixture(name="world")
def world_fixture(tmp_path: Path) -> Iterator[World]:
    w = make_world(tmp_path)
    yield w
    w.store.close()
