"""What every command handler receives (`Request`, `Services`), and the read commands.

Handlers are `async def handler(req: Request) -> Reply`: they read the store and the engine and
return a reply; they never touch a transport. A mistake the person can fix is a `CommandError`
(see `Request.usage_error`); the dispatcher turns it into a reply.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from chatbot import format as fmt
from chatbot import parsing
from chatbot.auth import RANK, actor
from chatbot.dispatch import CommandSpec
from chatbot.replies import Caller, Reply, Role, Table
from core.config import Settings
from core.errors import CommandError
from core.evaluate import Evaluation
from core.execution_report import ExecutionReport
from core.models import MarketSnapshot, Portfolio, Proposal
from core.rules import build_rules
from core.signals import basis_apr, funding_apr, nearest_future, perp_premium, realized_vol
from core.store import Store, StoredProposal

FNG_CREDIT = "Fear & Greed Index by alternative.me"
NO_DATA = ("No market data yet: the first poll runs at start-up and every few minutes after. "
           "Try again in a minute.")
DRIFT_RULES = ("drift_band", "futures_drift")


class EngineView(Protocol):
    """The part of core.engine.Engine the commands (and, for the last two, the app) use."""

    def latest(self) -> tuple[MarketSnapshot, Portfolio, Evaluation] | None: ...

    async def fresh_plan(self) -> tuple[Evaluation, Proposal]: ...

    async def run_cycle(self) -> Any: ...

    async def close(self) -> None: ...


class ExecutorView(Protocol):
    """The part of core.execution.Executor the commands use."""

    async def approve(self, proposal_id: str, actor: str, via: str,
                      chat_id: str | None) -> ExecutionReport: ...

    async def reject(self, proposal_id: str, actor: str, via: str, chat_id: str | None) -> str: ...

    async def reconcile(self) -> list[str]: ...


@dataclass
class Services:
    """Everything the commands work with; built once by chatbot.wiring."""

    settings: Settings
    store: Store
    engine: EngineView | None = None
    executor: ExecutorView | None = None
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    # CSV history for /backtest; None: the store, then settings.history_dir, then ../shared/data.
    history_dir: Path | None = None
    notes: dict[str, str] = field(default_factory=dict)  # e.g. "telegram_conflict" for /status


@dataclass(frozen=True, slots=True)
class Request:
    """One command to serve: who asked, with what role, with which arguments."""

    caller: Caller
    role: Role
    name: str
    args: tuple[str, ...]
    usage: str
    via_button: bool
    services: Services
    specs: tuple[CommandSpec, ...] = ()

    def arg(self, i: int) -> str | None:
        return self.args[i] if i < len(self.args) else None

    def usage_error(self, reason: str = "") -> CommandError:
        return CommandError((reason + "\n" if reason else "") + f"Usage: {self.usage}")

    def need_args(self, low: int, high: int) -> None:
        if not low <= len(self.args) <= high:
            raise self.usage_error("Missing argument." if len(self.args) < low else "Too many arguments.")

    @property
    def now(self) -> datetime:
        return self.services.clock()

    @property
    def actor(self) -> str:
        return actor(self.caller)


# ── shared look-ups ─────────────────────────────────────────────────────────────────────────


def rule_names(settings: Settings) -> list[str]:
    """Rules whose alerts can be muted: the strategy's enabled rules and the drift checks."""
    names = [r.name for r in build_rules(settings.strategy) if r.name]
    return list(dict.fromkeys([*names, *(DRIFT_RULES if settings.strategy.rules.drift.enabled else ())]))


def active_mutes(services: Services, now: datetime) -> dict[str, datetime]:
    """Rule → muted-until, for mutes still running."""
    out = {}
    for name in [*rule_names(services.settings), "all"]:
        flag = services.store.get_flag(f"mute:{name}")
        until = _until(flag)
        if until is not None and until > now:
            out[name] = until
    return out


def _until(flag: dict[str, Any] | None) -> datetime | None:
    """The time in a flag's "until" (or None when absent or unreadable)."""
    if not flag or not flag.get("until"):
        return None
    try:
        return datetime.fromisoformat(str(flag["until"]).replace("Z", "+00:00"))
    except ValueError:
        return None


def pause_line(services: Services, now: datetime) -> str | None:
    flag = services.store.get_flag("paused")
    if flag is None:
        return None
    since = _until({"until": flag.get("at")})
    when = f" since {fmt.clock(since, now)}" if since else ""
    return f"⏸ Paused by {flag.get('by', 'someone')}{when}: approvals are blocked. /resume ends it."


def open_proposal(services: Services, now: datetime) -> StoredProposal | None:
    """The newest proposal still awaiting a decision."""
    found = services.store.open_proposals(now)
    return found[-1] if found else None


def latest(services: Services) -> tuple[MarketSnapshot, Portfolio, Evaluation]:
    view = services.engine.latest() if services.engine is not None else None
    if view is None:
        raise CommandError(NO_DATA)
    return view


# ── /start and /help ────────────────────────────────────────────────────────────────────────


async def start(req: Request) -> Reply:
    """Welcome, and subscribe this chat to alerts."""
    s = req.services
    lines = [f"Hello{' ' + req.caller.display_name if req.caller.display_name else ''}! I watch funding, "
             "basis, volatility and Fear & Greed, and propose rebalances you approve here.",
             f"Mode: {s.settings.mode} · strategy {s.settings.strategy.name} · you are a {req.role}."]
    if req.caller.transport != "console" and req.caller.chat_id:
        new = s.store.subscribe(req.caller.transport, req.caller.chat_id, req.now)
        lines.append("This chat now receives alerts." if new else "This chat already receives alerts.")
    lines.append("Try /status, /signals or /plan; /help lists everything.")
    return Reply(title="Premia", text="\n".join(lines))


async def help_(req: Request) -> Reply:
    """The commands this caller may use, generated from the registry."""
    mine = [s for s in req.specs if RANK[s.role] <= RANK[req.role]]
    lines = [f"{s.usage} — {s.help}" for s in mine]
    hidden = len(req.specs) - len(mine)
    if hidden:
        lines.append(f"({hidden} more need the trader role.)")
    return Reply(title="Commands", text="\n".join(lines))


# ── /status ─────────────────────────────────────────────────────────────────────────────────


async def status(req: Request) -> Reply:
    """Value, weights against targets, futures exposure, hedged share, poll age, open proposal."""
    s, now = req.services, req.now
    snapshot, _portfolio, ev = latest(s)
    v, t, quote = ev.valuation, ev.targets, s.settings.quote
    assets = sorted(set(t.assets) | {a for a, x in v.spot_value.items() if x})
    rows = [(a, v.weight(a), t.spot_weight(a)) for a in assets]
    if v.value:
        rows.append(("stables", v.stable_value / v.value, t.stable))
    band = s.settings.strategy.band_pp
    lines = [f"Last poll {fmt.ago(snapshot.as_of, now)} ({fmt.clock(snapshot.as_of, now)})"]
    if now - snapshot.as_of > timedelta(minutes=3 * s.settings.scheduler.poll_minutes):
        lines[0] += " — old: check the feeds"
    outside = [f"{a} {fmt.pp((w - g) * 100)} pp" for a, w, g in rows[: len(assets)]
               if abs(w - g) * 100 > band]
    lines.append(f"Band ±{band} pp: " + ("outside — " + ", ".join(outside) if outside else "all within"))
    lines.append(f"Net futures {fmt.pct(v.net_futures_exposure, signed=True)} (target "
                 f"{fmt.pct(t.net_futures, signed=True)}) · hedged {fmt.pct(v.hedged_share, 0)}")
    op = open_proposal(s, now)
    if op is not None:
        lines.append(f"Open proposal {op.id}, expires in {fmt.span(op.proposal.expires_at - now)}: /plan")
    else:
        lines.append("No open proposal.")
    extra = [pause_line(s, now)]
    extra += [f"🔇 {rule} muted until {fmt.clock(u, now)}" for rule, u in active_mutes(s, now).items()]
    extra += [f"⚠ {w}" for w in ev.warnings[:3]]
    extra += [f"⚠ {note}" for note in s.notes.values()]
    lines.extend(x for x in extra if x)
    title = f"Portfolio {fmt.money(v.value)} {quote} · {s.settings.mode}"
    return Reply(title=title, text="\n".join(lines), tables=(fmt.weights_table(rows),))


# ── /signals ────────────────────────────────────────────────────────────────────────────────


def _asset_signals(snapshot: MarketSnapshot, asset: str) -> dict[str, Decimal | None]:
    m = snapshot.assets[asset]
    out: dict[str, Decimal | None] = {"funding": None, "basis": None, "premium": None,
                                      "vol7": realized_vol(m.closes, 7), "vol30": realized_vol(m.closes, 30)}
    if m.perp is not None:
        out["funding"] = funding_apr(m.perp.funding_rate, m.perp.funding_interval_hours)
        if m.perp.index:
            out["premium"] = perp_premium(m.perp.mark, m.perp.index)
    future = nearest_future(m.futures, snapshot.as_of)
    if future is not None and m.spot is not None:
        out["basis"] = basis_apr(future.price, m.spot.price, future.expiry, snapshot.as_of)
    return out


def _regimes(ev: Evaluation, asset: str | None, now: datetime) -> list[str]:
    lines = []
    for key, st in sorted(ev.states.items()):
        which = key.partition(":")[2]
        if asset is not None and which and which != asset:
            continue
        lines.append(f"{key}: {st.state} (since {fmt.clock(st.since, now)})")
    return lines


async def signals(req: Request) -> Reply:
    """Funding APR, basis, premium, volatility, Fear & Greed and each rule's regime."""
    req.need_args(0, 1)
    s, now = req.services, req.now
    snapshot, _portfolio, ev = latest(s)
    asset = parsing.asset(req.args[0], snapshot.assets) if req.args else None
    lines = [f"As of {fmt.clock(snapshot.as_of, now)} ({fmt.ago(snapshot.as_of, now)})"]
    tables: tuple[Table, ...] = ()
    if asset is not None:
        sig = _asset_signals(snapshot, asset)
        m = snapshot.assets[asset]
        if m.spot is not None:
            lines.append(f"Spot {fmt.money(m.spot.price)} {snapshot.quote}")
        if m.perp is not None:
            lines.append(f"Funding {fmt.pct(m.perp.funding_rate, 4, signed=True)} per "
                         f"{m.perp.funding_interval_hours:g} h = {fmt.pct(sig['funding'], signed=True)} APR")
            lines.append(f"Premium (mark/index) {fmt.pct(sig['premium'], 3, signed=True)}")
        future = nearest_future(m.futures, snapshot.as_of)
        lines.append(f"Basis {fmt.pct(sig['basis'], signed=True)} a year" +
                     (f" ({future.symbol})" if future and sig["basis"] is not None else " (no dated future)"))
        lines.append(f"Volatility 7 d {fmt.pct(sig['vol7'], 0)} · 30 d {fmt.pct(sig['vol30'], 0)}")
    else:
        rows = []
        for a in sorted(snapshot.assets):
            sig = _asset_signals(snapshot, a)
            vol = f"{fmt.pct(sig['vol7'], 0)}/{fmt.pct(sig['vol30'], 0)}"
            rows.append((a, fmt.pct(sig["funding"], signed=True), fmt.pct(sig["basis"], signed=True), vol))
        tables = (Table(("asset", "funding", "basis", "vol 7/30d"), tuple(rows)),)
        lines.append("Funding and basis are annualized. /signals BTC shows one asset in full.")
    fg = snapshot.fear_greed
    if fg is not None:
        lines.append(f"Fear & Greed {fg.value} ({fg.label}), {fmt.clock(fg.timestamp, now)}")
    regimes = _regimes(ev, asset, now)
    if regimes:
        lines.append("Regimes:")
        lines.extend("• " + r for r in regimes)
    if fg is not None:
        lines.append(FNG_CREDIT)
    title = f"Signals · {asset}" if asset else "Signals"
    return Reply(title=title, text="\n".join(lines), tables=tables)


# ── /history ────────────────────────────────────────────────────────────────────────────────


async def history(req: Request) -> Reply:
    """The last N proposals and what became of them."""
    req.need_args(0, 1)
    n = parsing.count(req.arg(0), 5, high=30)
    now = req.now
    found = req.services.store.recent_proposals(n)
    if not found:
        return Reply(text="No proposals yet.")
    rows = []
    for sp in found:
        who = (sp.decided_by or "").partition(":")[2] or ""
        status = fmt.status_word("expired" if sp.status == "proposed" and sp.proposal.expires_at <= now
                                 else sp.status)
        rows.append((sp.id, fmt.clock(sp.proposal.created_at, now), status, str(len(sp.proposal.orders)),
                     who))
    table = Table(("id", "created", "status", "legs", "by"), tuple(rows))
    return Reply(title=f"Last {len(found)} proposals", text="/plan shows the open one.", tables=(table,))


def specs_for(role: Role, specs: Sequence[CommandSpec]) -> list[CommandSpec]:
    return [s for s in specs if RANK[s.role] <= RANK[role]]
