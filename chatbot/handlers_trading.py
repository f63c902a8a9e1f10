"""The trading commands: /plan, /approve and /reject.

Checks that only need the store (unknown id, already decided, expired, paused) are made here so
that the answer is friendly and immediate; the Executor makes them again, atomically, because
two presses can race. Nothing here trades: approval goes through the Executor.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime

from chatbot import format as fmt
from chatbot import parsing
from chatbot.handlers import NO_DATA, Request, Services, open_proposal
from chatbot.replies import Reply
from core.errors import CommandError, ExecutionError
from core.execution import MarketMovedError
from core.execution_report import ExecutionReport
from core.models import Proposal
from core.store import StoredProposal

# A fresh plan polls the exchanges; past this the person gets an answer rather than silence.
PLAN_TIMEOUT_S = 45.0


def _quote(s: Services) -> str:
    return s.settings.quote


def store_fresh(s: Services, p: Proposal, now: datetime) -> None:
    """Keep a freshly computed proposal (unless the engine already did), replacing older ones."""
    if s.store.get_proposal(p.id) is None:
        s.store.save_proposal(p)
    s.store.supersede_open(p.id, now)


async def plan(req: Request) -> Reply:
    """The open proposal, or a fresh one computed from the market now."""
    req.need_args(0, 0)
    s, now = req.services, req.now
    current = open_proposal(s, now)
    if current is not None:
        return fmt.proposal_reply(current.proposal, _quote(s), now)
    if s.engine is None:
        raise CommandError(NO_DATA)
    try:
        _ev, p = await asyncio.wait_for(s.engine.fresh_plan(), PLAN_TIMEOUT_S)
    except TimeoutError:
        raise CommandError("The market did not answer in time; try /plan again in a minute.") from None
    if not p.orders:
        lines = ["Nothing to do: every weight is within its band and no rule asks for a change."]
        if p.triggers:
            lines = ["Rules fired, but no order is big enough to place:"]
            lines += [f"• {t.explanation}" for t in p.triggers[:4]]
        lines += [f"⚠ {w}" for w in p.warnings[:4]]
        return Reply(title="No proposal", text="\n".join(lines))
    paused = s.store.get_flag("paused")
    if paused is not None:
        # A what-if only: stored, it would be an open proposal nobody may approve.
        note = (f"⏸ Trading is paused (by {paused.get('by', 'someone')}): this is what I would propose. "
                "Nothing is stored or traded; /resume, then /plan to act on it.")
        return fmt.proposal_reply(p, _quote(s), now, note=note, with_buttons=False)
    store_fresh(s, p, now)
    return fmt.proposal_reply(p, _quote(s), req.now)


def _decided_note(sp: StoredProposal, status: str, now: datetime) -> str:
    if status == "expired":
        ago = fmt.ago(sp.proposal.expires_at, now)
        return f"{sp.id} expired {ago}. Nothing changed; /plan for a fresh one."
    who = ""
    if sp.decided_by:
        who = f" by {sp.decided_by.partition(':')[2] or sp.decided_by}"
        who += f" via {sp.decided_via}" if sp.decided_via else ""
    when = f" at {fmt.clock(sp.updated_at, now)}"
    return f"{sp.id} is already {fmt.status_word(status)}{who}{when}. Nothing changed."


def _current(req: Request, pid: str) -> tuple[StoredProposal | None, Reply | None]:
    """The proposal when it can still be decided; otherwise a reply that says why not."""
    now = req.now
    sp = req.services.store.get_proposal(pid)
    if sp is None:
        raise CommandError(f"I have no proposal {pid}. /plan shows the open one.")
    status = "expired" if sp.status == "proposed" and sp.proposal.expires_at <= now else sp.status
    if status == "proposed":
        return sp, None
    note = _decided_note(sp, status, now)
    if req.via_button:
        # The pressed message is shown in its true state, without buttons that cannot work; the
        # title comes first, so it is also what the presser's toast says.
        shown = fmt.proposal_reply(sp.proposal, _quote(req.services), now, status=status, note=note)
        return None, replace(shown, title=f"Proposal {sp.id} · already {fmt.status_word(status)}")
    return None, Reply(text=note, level="error", subject=sp.id)


async def approve(req: Request) -> Reply:
    """Approve a proposal: the market is checked again, then the orders go to the broker."""
    req.need_args(1, 1)
    s = req.services
    pid = parsing.proposal_id(req.args[0])
    sp, answer = _current(req, pid)
    if sp is None:
        assert answer is not None
        return answer
    paused = s.store.get_flag("paused")
    if paused is not None:
        raise CommandError(f"Trading is paused (by {paused.get('by', 'someone')}): nothing is approved "
                           f"until /resume. {pid} stays open until it expires.")
    if s.executor is None:
        raise CommandError("Approvals are not available: this build has no executor. Nothing was traded.")
    try:
        report = await s.executor.approve(pid, req.actor, req.caller.transport, req.caller.chat_id or None)
    except ExecutionError as exc:
        return _refused(req, sp, exc)
    return execution_reply(req, sp.proposal, report)


def _refused(req: Request, sp: StoredProposal, exc: ExecutionError) -> Reply:
    """The executor said no; when it offers a fresh proposal, show that one with its buttons."""
    s, now = req.services, req.now
    fresh_id = exc.fresh_proposal_id if isinstance(exc, MarketMovedError) else None
    fresh = s.store.get_proposal(fresh_id) if fresh_id else None
    if fresh is not None and fresh.status == "proposed":
        return fmt.proposal_reply(fresh.proposal, _quote(s), now, note=f"{sp.id} was not executed: {exc}")
    return Reply(text=f"{sp.id} was not executed: {exc}", level="error", subject=sp.id)


def execution_reply(req: Request, p: Proposal, report: ExecutionReport) -> Reply:
    """The execution report under the proposal's id, so the pressed message shows the outcome."""
    text, table = fmt.execution_parts(report, _quote(req.services))
    who = req.caller.display_name or req.actor
    mode = "paper" if req.services.settings.mode == "paper" else "LIVE"
    return Reply(title=f"Proposal {p.id} · {fmt.status_word(report.status)} ({mode})",
                 text=f"Approved by {who}.\n{text}", tables=(table,) if table else (), subject=p.id)


async def reject(req: Request) -> Reply:
    """Reject a proposal: nothing is traded, and the decision is audited."""
    req.need_args(1, 1)
    s, now = req.services, req.now
    pid = parsing.proposal_id(req.args[0])
    sp, answer = _current(req, pid)
    if sp is None:
        assert answer is not None
        return answer
    chat = req.caller.chat_id or None
    if s.executor is not None:
        try:
            await s.executor.reject(pid, req.actor, req.caller.transport, chat)
        except ExecutionError as exc:
            raise CommandError(str(exc)) from None
    elif not s.store.transition(pid, "proposed", "rejected", now, req.actor, req.caller.transport,
                                "rejected in chat", chat_id=chat):
        # Decided by someone else between the check and now.
        _sp, answer = _current(req, pid)
        return answer or Reply(text=f"{pid} could not be rejected.", level="error")
    who = req.caller.display_name or req.actor
    note = f"Rejected by {who}. Nothing was traded."
    return fmt.proposal_reply(sp.proposal, _quote(s), now, status="rejected", note=note)
