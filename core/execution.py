"""From an approval to fills: checks, the compare-and-set start, spot legs then futures, the report.

A proposal executes at most once: the move proposed → approved → executing is one store
transaction (compare-and-set, audited), so of two approvals racing from Telegram and Discord,
two threads or two processes, exactly one starts it. Every order is recorded in the store under
a client order id derived from the proposal before it is sent; after a crash `reconcile()` looks
each one up at the exchange before anything new is sent.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from core.brokers.base import Broker, OrderReport, OrderRequest, client_order_id
from core.codec import json_dumps, snapshot_to_dict
from core.config import Settings
from core.errors import ConfigError, ExecutionError
from core.evaluate import evaluate
from core.execution_checks import (
    Transfer,
    check_balances,
    check_caps,
    check_market,
    hedged_amount,
    turnover_key,
)
from core.execution_report import ExecutionReport, LegFill, funding_now, leg_fill
from core.feeds.retry import describe
from core.lifecycle import (
    APPROVED,
    EXECUTING,
    EXPIRED,
    PROPOSED,
    SUPERSEDED,
    closed_reason,
    is_expired,
    move,
)
from core.models import ZERO, MarketSnapshot, Order, Proposal
from core.planner import plan
from core.portfolio import value_portfolio
from core.reconcile import reconcile, save_report, settle, stored_report
from core.rules import RuleState
from core.store import Store, StoredProposal

log = logging.getLogger(__name__)

Refresh = Callable[[], Awaitable[MarketSnapshot]]
Replan = Callable[[MarketSnapshot], Awaitable[Proposal]]
Checkpoint = Callable[[str, Mapping[str, Any]], None]


class MarketMovedError(ExecutionError):
    """Refused because prices moved; `fresh_proposal_id` names the proposal offered instead."""

    def __init__(self, message: str, fresh_proposal_id: str | None) -> None:
        super().__init__(message)
        self.fresh_proposal_id = fresh_proposal_id


def _hhmm(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%H:%M UTC")


class Executor:
    """Approves, rejects and executes proposals through one broker (paper or live)."""

    def __init__(self, settings: Settings, store: Store, broker: Broker, refresh: Refresh,
                 clock: Callable[[], datetime], *, replan: Replan | None = None,
                 checkpoint: Checkpoint | None = None) -> None:
        if broker.live and settings.mode != "live":
            # Real orders only when the config says so, whoever wired the broker (invariant 1).
            raise ConfigError('a live broker needs mode = "live" in the config; paper is the default')
        self.settings = settings
        self.store = store
        self.broker = broker
        self.refresh = refresh
        self.clock = clock
        self.replan = replan or self._replan
        self.checkpoint = checkpoint or (lambda name, info: None)
        self.margin_rate = settings.execution.futures_margin_rate
        self.reconciled = False
        self._active: set[str] = set()  # proposals this process is executing right now

    # ── the chat layer's calls ──────────────────────────────────────────────────────────────

    async def reconcile(self) -> list[str]:
        """Settle orders and proposals left in flight by a crash; call at start-up."""
        messages = await reconcile(self.store, self.broker, self.clock, skip=set(self._active))
        self.reconciled = True
        return messages

    async def reject(self, proposal_id: str, actor: str, via: str, chat_id: str | None = None) -> str:
        """Reject an open proposal (audited); ExecutionError if it is not open."""
        now = self.clock()
        stored = self._open_proposal(proposal_id, now, "rejected", via)
        if not move(self.store, proposal_id, PROPOSED, "rejected", now, actor, via,
                    "rejected by a person", chat_id):
            raise ExecutionError(f"{proposal_id} cannot be rejected: "
                                 f"{closed_reason(self._status(proposal_id))}.")
        return f"Rejected {stored.id}. Nothing was traded."

    async def approve(self, proposal_id: str, actor: str, via: str,
                      chat_id: str | None = None) -> ExecutionReport:
        """Check everything again, start the proposal exactly once, and execute it."""
        now = self.clock()
        try:
            if not self.reconciled:
                raise ExecutionError("Orders from before the last restart are still being checked; "
                                     "try again in a moment.")
            p = self._open_proposal(proposal_id, now, "approved", via).proposal
            self._refuse_if_paused()
            if not p.orders:
                raise ExecutionError(f"{proposal_id} has no orders to execute.")
            snapshot = await self._refresh()
            self.broker.use_snapshot(snapshot)  # paper fills at these prices
            requests = await self._checked(p, snapshot, actor, via, chat_id)
            transfers = check_balances(requests, await self.broker.balances(), self.settings,
                                       margin_rate=self.margin_rate)
            self._start(p, requests, actor, via, chat_id)
        except ExecutionError as exc:
            self.store.audit(self.clock(), actor, via, chat_id, "approve.refused", proposal_id, str(exc))
            raise
        self._active.add(p.id)
        try:
            return await self._execute(p, requests, transfers, snapshot)
        finally:
            self._active.discard(p.id)

    # ── checks ─────────────────────────────────────────────────────────────────────────────

    def _status(self, proposal_id: str) -> str:
        stored = self.store.get_proposal(proposal_id)
        return stored.status if stored else "unknown"

    def _open_proposal(self, proposal_id: str, now: datetime, action: str, via: str) -> StoredProposal:
        """The proposal if it is still open; expires it (audited) when its time is up."""
        stored = self.store.get_proposal(proposal_id)
        if stored is None:
            raise ExecutionError(f"There is no proposal {proposal_id}; check the id in the proposal message.")
        if stored.status == PROPOSED and is_expired(stored.proposal.expires_at, now):
            move(self.store, proposal_id, PROPOSED, EXPIRED, now, "system", via, "expired before a decision")
            raise ExecutionError(f"{proposal_id} expired at {_hhmm(stored.proposal.expires_at)} and can no "
                                 f"longer be {action}; nothing was traded. Ask for a fresh plan.")
        if stored.status != PROPOSED:
            who = f" (by {stored.decided_by} via {stored.decided_via})" if stored.decided_by else ""
            raise ExecutionError(f"{proposal_id} cannot be {action}: {closed_reason(stored.status)}{who}.")
        return stored

    def _refuse_if_paused(self) -> None:
        flag = self.store.get_flag("paused")
        if flag is not None:
            raise ExecutionError(f"Trading is paused (by {flag.get('by', 'someone')}): nothing was "
                                 "traded. Resume first, then approve again.")

    async def _refresh(self) -> MarketSnapshot:
        try:
            return await self.refresh()
        except Exception as exc:  # any feed failure refuses; the proposal stays open
            log.warning("market refresh on approval failed: %s", describe(exc))
            raise ExecutionError(f"Could not fetch the market again ({describe(exc)}); nothing was "
                                 "traded. Try again in a minute.") from None

    async def _checked(self, p: Proposal, snapshot: MarketSnapshot, actor: str, via: str,
                       chat_id: str | None) -> list[OrderRequest]:
        """Refuse on stale or moved prices (offering a fresh proposal), caps and turnover."""
        check = check_market(p, snapshot, self.settings, self.clock())
        if check.stale:
            raise ExecutionError(f"Not executed: {'; '.join(check.stale)}. {p.id} stays open; try again "
                                 "when fresh prices arrive.")
        if check.moved:
            await self._offer_fresh(p, snapshot, check.moved)
        requests = [await self._prepare(o, o.amount, check.leg_prices[o.leg], p.id, 0)
                    for o in p.orders]
        check_caps(requests, self.settings, self._turnover_today())
        return requests

    async def _prepare(self, order: Order, amount: Decimal, price: Decimal, pid: str,
                       attempt: int) -> OrderRequest:
        return await self.broker.prepare(order, amount, price, leg=order.leg, attempt=attempt,
                                         client_order_id=client_order_id(pid, order.leg, attempt))

    async def _offer_fresh(self, p: Proposal, snapshot: MarketSnapshot, moved: tuple[str, ...]) -> None:
        now = self.clock()
        what = "; ".join(moved)
        try:
            fresh = await self.replan(snapshot)
        except Exception as exc:  # a failed re-plan must not hide the refusal itself
            log.exception("re-planning after a price move failed")
            fresh, what = None, f"{what} (a fresh plan failed: {describe(exc)})"
        if fresh is not None and fresh.orders:
            if fresh.snapshot_id is None:
                sid = self.store.save_snapshot(snapshot.as_of, snapshot_to_dict(snapshot), "approval")
                fresh = replace(fresh, snapshot_id=sid)
            with self.store.transaction():
                self.store.save_proposal(fresh)
                self.store.supersede_open(fresh.id, now)
            raise MarketMovedError(f"Not executed: prices moved since {p.id} was made ({what}). "
                                   f"Fresh proposal at current prices: {fresh.id}.", fresh.id)
        move(self.store, p.id, PROPOSED, SUPERSEDED, now, "system", "executor",
             f"prices moved ({what}); nothing to do at current prices")
        raise MarketMovedError(f"Not executed: prices moved since {p.id} was made ({what}). At current "
                               "prices no rebalance is needed.", None)

    async def _replan(self, snapshot: MarketSnapshot) -> Proposal:
        """A fresh proposal from the refreshed market and portfolio (rule states read, never written)."""
        portfolio = (await self.broker.balances()).portfolio()
        states = {k: RuleState(v["state"], v["since"], v.get("data") or {})
                  for k, v in self.store.get_rule_states().items()}
        ev = evaluate(snapshot, portfolio, self.settings, states)
        return plan(ev, snapshot, portfolio, self.settings, strategy=self.settings.strategy.name)

    def _turnover_today(self) -> Decimal:
        flag = self.store.get_flag(turnover_key(self.clock())) or {}
        return Decimal(str(flag.get("notional", "0")))

    def _add_turnover(self, delta: Decimal) -> None:
        now = self.clock()
        with self.store.transaction():
            total = self._turnover_today() + delta
            self.store.set_flag(turnover_key(now), {"notional": str(max(ZERO, total))}, now)

    # ── the one-time start ─────────────────────────────────────────────────────────────────

    def _start(self, p: Proposal, requests: list[OrderRequest], actor: str, via: str,
               chat_id: str | None) -> None:
        """proposed → approved → executing in one transaction, with the pause switch and the
        daily turnover re-read inside it: the decisive step, taken at most once."""
        now = self.clock()
        planned = sum((r.notional for r in requests), ZERO)
        with self.store.transaction():
            self._refuse_if_paused()
            current = self.store.get_proposal(p.id)
            if current is None or current.status != PROPOSED:
                who = (f" (by {current.decided_by} via {current.decided_via})"
                       if current and current.decided_by else "")
                raise ExecutionError(f"{p.id} cannot be approved: "
                                     f"{closed_reason(current.status if current else 'unknown')}{who}.")
            check_caps(requests, self.settings, self._turnover_today())
            legs = ", ".join(f"{r.order.side} {r.amount} {r.order.symbol}" for r in requests)
            if not (move(self.store, p.id, PROPOSED, APPROVED, now, actor, via, "approved", chat_id)
                    and move(self.store, p.id, APPROVED, EXECUTING, now, actor, via,
                             f"sending {len(requests)} order(s): {legs}", chat_id)):
                raise ExecutionError(f"{p.id} cannot be approved: {closed_reason(self._status(p.id))}.")
            self._add_turnover(planned)

    # ── execution ──────────────────────────────────────────────────────────────────────────

    async def _execute(self, p: Proposal, requests: list[OrderRequest], transfers: list[Transfer],
                       snapshot: MarketSnapshot) -> ExecutionReport:
        self.checkpoint("executing", {"proposal_id": p.id})
        fills: dict[int, LegFill] = {}
        messages: list[str] = []
        spot_done: list[tuple[Order, Decimal]] = []
        try:
            await self._transfers(p.id, [t for t in transfers if t.before == "spot"], messages)
            for r in (r for r in requests if r.order.market == "spot"):
                reports, note = await self._run_leg(p.id, r)
                fills[r.leg] = leg_fill(r.order, r, reports, note)
                spot_done.append((r.order, sum((x.filled - x.fee_in_base for x in reports), ZERO)))
                self.checkpoint("leg_done", {"proposal_id": p.id, "leg": r.leg})
            await self._transfers(p.id, [t for t in transfers if t.before == "futures"], messages)
            for r in (r for r in requests if r.order.market != "spot"):
                fills[r.leg] = await self._futures_leg(p.id, r, spot_done)
                self.checkpoint("leg_done", {"proposal_id": p.id, "leg": r.leg})
        except Exception as exc:  # the exchange went away mid-way: settle what is known
            log.exception("execution of %s interrupted", p.id)
            messages.append(f"Execution was interrupted ({describe(exc)}); orders were looked up at the "
                            "exchange and the proposal settled in its true state.")
            try:
                await reconcile(self.store, self.broker, self.clock, skip=self._active - {p.id})
            except Exception as again:
                log.exception("reconciling %s failed", p.id)
                raise ExecutionError(f"{p.id}: execution interrupted ({describe(exc)}) and the exchange "
                                     f"cannot be reached ({describe(again)}); it will be reconciled at "
                                     "the next start. Do not approve it again.") from None
        status, _ = settle(self.store, p.id, self.clock())
        # The day's turnover held the planned notional since the start: now the traded one.
        size = {r.leg: r.order.contract_size for r in requests}
        traded = sum((f.filled * (f.avg_price or ZERO) * size[f.leg] for f in fills.values()), ZERO)
        self._add_turnover(traded - sum((r.notional for r in requests), ZERO))
        legs = [fills.get(r.leg) or self._stored_leg(p.id, r) for r in requests]
        report = await self._report(p, status, legs, messages, snapshot)
        self.store.audit(self.clock(), "system", "executor", None, "execution.report", p.id,
                         json_dumps(report.to_dict()))
        return report

    def _stored_leg(self, pid: str, r: OrderRequest) -> LegFill:
        """A leg the execution did not finish, as reconciliation left it in the store."""
        rows = [o for o in self.store.orders_for(pid) if o["leg"] == r.leg]
        if not rows:
            return leg_fill(r.order, None, [], "not sent")
        first = next((o for o in rows if not o["payload"].get("attempt")), rows[0])
        return leg_fill(r.order, replace(r, amount=Decimal(first["payload"]["amount"])),
                        [stored_report(o) for o in rows])

    async def _transfers(self, pid: str, transfers: list[Transfer], messages: list[str]) -> None:
        for t in transfers:
            # Audited before it is made, like every side effect.
            self.store.audit(self.clock(), "system", "executor", None, "transfer", pid, t.describe())
            ref = await self.broker.transfer(t.asset, t.amount, t.source, t.target)
            messages.append(f"Transferred: {t.describe()} (ref {ref}).")

    async def _futures_leg(self, pid: str, r: OrderRequest,
                           spot_done: list[tuple[Order, Decimal]]) -> LegFill:
        """A futures leg, re-sized to the actual fill of the spot leg it hedges."""
        amount = hedged_amount(r.order, r.amount, spot_done)
        note = ""
        if amount != r.amount:
            note = f"hedge re-sized from {r.amount:f} to the spot fill"
            if amount <= 0:
                return leg_fill(r.order, None, [], "hedge not placed: its spot leg did not fill")
            try:
                r = await self._prepare(r.order, amount, r.market_price, pid, 0)
            except ExecutionError as exc:
                return leg_fill(r.order, None, [], f"hedge not placed: {exc}")
            note = f"hedge re-sized to {r.amount:f} to match the spot fill"
        reports, more = await self._run_leg(pid, r)
        return leg_fill(r.order, r, reports, "; ".join(x for x in (note, more) if x))

    async def _run_leg(self, pid: str, first: OrderRequest) -> tuple[list[OrderReport], str]:
        """Record, send, wait, cancel on timeout and (policy) replace what is left."""
        cfg = self.settings.execution
        r, reports, note = first, [], ""
        while True:
            if self.store.record_order(pid, r.leg, r.client_order_id, r.payload(), "pending", self.clock()):
                self.checkpoint("recorded", {"proposal_id": pid, "leg": r.leg, "attempt": r.attempt})
                report = await self.broker.submit(r)
                self.checkpoint("sent", {"proposal_id": pid, "leg": r.leg, "attempt": r.attempt})
            else:
                owner = (self.store.get_order(r.client_order_id) or {}).get("proposal_id")
                if owner != pid:
                    raise ExecutionError(f"client order id {r.client_order_id} belongs to {owner}")
                report = await self.broker.lookup(r.client_order_id, r.payload())  # never send twice
            save_report(self.store, report, self.clock())
            if not report.done:
                report = await self.broker.wait(r, cfg.order_timeout_seconds)
                save_report(self.store, report, self.clock())
            if not report.done:
                report = replace(await self.broker.cancel(r), timed_out=True)
                save_report(self.store, report, self.clock())
            reports.append(report)
            left = first.amount - sum((x.filled for x in reports), ZERO)
            if not (report.timed_out and cfg.on_timeout == "cancel_replace" and left > 0
                    and r.attempt < cfg.max_replaces):
                if report.timed_out:
                    note = f"timed out after {cfg.order_timeout_seconds}s; the rest was canceled"
                return reports, note
            try:
                r = await self._prepare(r.order, left, await self.broker.market_price(r.order), pid,
                                        r.attempt + 1)
            except ExecutionError as exc:
                return reports, f"timed out; the rest was not replaced: {exc}"

    async def _report(self, p: Proposal, status: str, fills: list[LegFill], messages: list[str],
                      snapshot: MarketSnapshot) -> ExecutionReport:
        weights: Mapping[str, Decimal] = {}
        exposure, funding = ZERO, ZERO
        try:
            portfolio = (await self.broker.balances()).portfolio()
            valuation = value_portfolio(portfolio, snapshot, self.settings.stablecoins)
            weights, exposure = valuation.weights, valuation.net_futures_exposure
            funding = funding_now(portfolio, snapshot)
        except Exception as exc:  # the trades are done; a failed balance read only thins the report
            messages.append(f"Could not read balances after the trades ({describe(exc)}).")
        return ExecutionReport(p.id, status, tuple(fills), funding, weights, exposure, tuple(messages),
                               fees=sum((f.fee for f in fills), ZERO))
