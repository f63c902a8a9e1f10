"""A proposal's life: its states, the moves allowed between them, expiry and supersession.

    proposed ─► approved ─► executing ─► executed | partially_executed | failed
        ├─► rejected
        ├─► expired       (its time ran out before anyone decided)
        └─► superseded    (a newer proposal, or a fresh one after the market moved)

Every move is a compare-and-set in the store that writes its audit row in the same
transaction, so it is on disk before whatever it permits happens. The store accepts any move it
is asked for; this module is the one place that knows which moves make sense.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Final, Protocol

PROPOSED: Final = "proposed"
APPROVED: Final = "approved"
EXECUTING: Final = "executing"
EXECUTED: Final = "executed"
PARTIALLY_EXECUTED: Final = "partially_executed"
FAILED: Final = "failed"
REJECTED: Final = "rejected"
EXPIRED: Final = "expired"
SUPERSEDED: Final = "superseded"

ALLOWED: Final[dict[str, frozenset[str]]] = {
    PROPOSED: frozenset({APPROVED, REJECTED, EXPIRED, SUPERSEDED}),
    # An approved proposal that cannot start (crash before the first order) ends as failed.
    APPROVED: frozenset({EXECUTING, FAILED}),
    EXECUTING: frozenset({EXECUTED, PARTIALLY_EXECUTED, FAILED}),
}
STATES: Final = frozenset({PROPOSED, APPROVED, EXECUTING, EXECUTED, PARTIALLY_EXECUTED, FAILED,
                           REJECTED, EXPIRED, SUPERSEDED})
TERMINAL: Final = STATES - set(ALLOWED)
# Orders may be at an exchange for proposals in these states: reconcile them after a restart.
UNSETTLED: Final = frozenset({APPROVED, EXECUTING})

# Why a proposal can no longer be acted on, as a person reads it.
WHY_CLOSED: Final[dict[str, str]] = {
    APPROVED: "it is already approved and being executed",
    EXECUTING: "it is being executed right now",
    EXECUTED: "it was already executed",
    PARTIALLY_EXECUTED: "it was already executed (partly)",
    FAILED: "its execution already ran and failed",
    REJECTED: "it was rejected",
    EXPIRED: "it expired",
    SUPERSEDED: "a newer proposal replaced it",
}


class TransitionStore(Protocol):
    """The part of core.store.Store that moves a proposal between states."""

    def transition(self, proposal_id: str, expected: set[str] | frozenset[str] | str, to: str,
                   at: datetime, actor: str, via: str, detail: str = "",
                   chat_id: str | int | None = None) -> bool: ...

    def expire_proposals(self, now: datetime) -> list[str]: ...

    def supersede_open(self, except_id: str | None, at: datetime) -> list[str]: ...


class IllegalTransition(ValueError):
    """A move the lifecycle does not allow (a programming error, never a user's)."""


def allowed(current: str, to: str) -> bool:
    """True if a proposal in `current` may move to `to`."""
    return to in ALLOWED.get(current, frozenset())


def sources(to: str) -> frozenset[str]:
    """Every state from which `to` may be reached."""
    found = frozenset(s for s, targets in ALLOWED.items() if to in targets)
    if not found:
        raise IllegalTransition(f"no state leads to {to!r}")
    return found


def move(store: TransitionStore, proposal_id: str, frm: str | Iterable[str], to: str, at: datetime,
         actor: str, via: str, detail: str = "", chat_id: str | int | None = None) -> bool:
    """Compare-and-set `frm` → `to` (audited); False if the proposal was not in `frm`."""
    expected = frozenset([frm] if isinstance(frm, str) else frm)
    bad = [s for s in expected if not allowed(s, to)]
    if bad:
        raise IllegalTransition(f"{proposal_id}: {', '.join(sorted(bad))} → {to} is not allowed")
    return store.transition(proposal_id, expected, to, at, actor, via, detail, chat_id=chat_id)


def is_expired(expires_at: datetime, now: datetime) -> bool:
    """A proposal expires at its `expires_at`, not a moment later."""
    return now >= expires_at


def expire_due(store: TransitionStore, now: datetime) -> list[str]:
    """Move every overdue open proposal to expired (audited); returns their ids."""
    return store.expire_proposals(now)


def supersede_others(store: TransitionStore, newer_id: str, at: datetime) -> list[str]:
    """A newer proposal for the portfolio replaces every other open one; returns their ids."""
    return store.supersede_open(newer_id, at)


def closed_reason(status: str) -> str:
    """Why a proposal in `status` cannot be approved or rejected, for a person."""
    return WHY_CLOSED.get(status, f"its status is {status}")


def final_status(planned_legs: int, filled_legs: int, any_fill: bool) -> str:
    """executed when every leg filled in full, partially_executed when something traded, else failed."""
    if planned_legs and filled_legs == planned_legs:
        return EXECUTED
    return PARTIALLY_EXECUTED if any_fill else FAILED
