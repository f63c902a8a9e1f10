"""Crash recovery: settle every order and proposal left in flight, before anything new is sent.

After a restart nothing is resumed: an order still resting at the exchange is canceled (the
market has moved on since it was approved), an order recorded but never sent is marked so, and
each unfinished proposal ends in the state its orders prove: executed, partially executed or
failed. The person gets a fresh proposal from the next cycle.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from core.brokers.base import Broker, OrderReport
from core.lifecycle import APPROVED, FAILED, UNSETTLED, final_status, move
from core.models import ZERO
from core.store import Store

log = logging.getLogger(__name__)


def save_report(store: Store, report: OrderReport, at: datetime) -> None:
    """Write an order's latest state to the store."""
    patch: dict[str, Any] = {}
    if report.message:
        patch["message"] = report.message
    if report.fee_in_base:
        patch["fee_in_base"] = str(report.fee_in_base)
    if report.fee_estimated:
        patch["fee_estimated"] = True
    store.update_order(report.client_order_id, report.status, at,
                       exchange_order_id=report.exchange_order_id, filled=report.filled,
                       avg_price=report.avg_price, fee=report.fee, payload_patch=patch or None)


def stored_report(row: Mapping[str, Any]) -> OrderReport:
    """An order as the store last saw it."""
    payload = row.get("payload") or {}
    return OrderReport(row["client_order_id"], row["status"], row["filled"] or ZERO, row["avg_price"],
                       row["fee"] or ZERO, Decimal(payload.get("fee_in_base", "0")),
                       exchange_order_id=row["exchange_order_id"], message=payload.get("message", ""),
                       fee_estimated=bool(payload.get("fee_estimated")))


def leg_outcomes(rows: list[dict[str, Any]]) -> dict[int, tuple[Decimal, Decimal]]:
    """Per leg: (amount of its first attempt, total filled over every attempt)."""
    out: dict[int, tuple[Decimal, Decimal]] = {}
    for row in rows:
        leg = int(row["leg"])
        planned, filled = out.get(leg, (ZERO, ZERO))
        if int(row["payload"].get("attempt", 0)) == 0:
            planned = Decimal(row["payload"]["amount"])
        out[leg] = (planned, filled + (row["filled"] or ZERO))
    return out


def settled_status(store: Store, proposal_id: str, legs: Collection[int]) -> tuple[str, list[str]]:
    """The final status a proposal's recorded orders prove, and one line per leg."""
    outcomes = leg_outcomes(store.orders_for(proposal_id))
    lines, complete, any_fill = [], 0, False
    for leg in sorted(legs):
        if leg not in outcomes:
            lines.append(f"leg {leg}: not sent")
            continue
        planned, filled = outcomes[leg]
        any_fill = any_fill or filled > 0
        if planned > 0 and filled >= planned:
            complete += 1
        lines.append(f"leg {leg}: filled {filled:f} of {planned:f}")
    return final_status(len(legs), complete, any_fill), lines


def settle(store: Store, proposal_id: str, at: datetime, actor: str = "system",
           via: str = "executor") -> tuple[str, list[str]]:
    """Move an executing (or approved) proposal to the final state its orders prove (audited)."""
    stored = store.get_proposal(proposal_id)
    if stored is None or stored.status not in UNSETTLED:
        return (stored.status if stored else "unknown"), []
    legs = [o.leg for o in stored.proposal.orders]
    status, lines = settled_status(store, proposal_id, legs)
    if stored.status == APPROVED:
        # Orders are sent only once a proposal is executing: an approved one sent nothing.
        status, lines = FAILED, ["interrupted before any order was sent"]
    move(store, proposal_id, stored.status, status, at, actor, via, "; ".join(lines))
    return status, lines


async def settle_order(store: Store, broker: Broker, row: Mapping[str, Any],
                       clock: Callable[[], datetime]) -> OrderReport:
    """Find out what became of one recorded order; cancel it if it still rests at the exchange."""
    cid, payload = row["client_order_id"], row["payload"]
    report = await broker.lookup(cid, payload)
    if not report.done:
        report = await broker.cancel_by_id(cid, payload)
    save_report(store, report, clock())
    return report


def unsettled_proposals(store: Store, also: Collection[str] = ()) -> list[str]:
    """Ids of proposals left approved or executing (newest first), plus `also` if unsettled."""
    ids = [sp.id for sp in store.proposals_with_status(UNSETTLED)]
    for pid in also:
        sp = store.get_proposal(pid)
        if sp is not None and sp.status in UNSETTLED and pid not in ids:
            ids.append(pid)
    return ids


async def reconcile(store: Store, broker: Broker, clock: Callable[[], datetime], *,
                    skip: Collection[str] = ()) -> list[str]:
    """Settle in-flight orders by client order id, then their proposals; one line per change.

    `skip` names proposals this process is executing right now (they are not orphans).
    """
    messages: list[str] = []
    touched: set[str] = set()
    for row in store.orders_in_flight():
        if row["proposal_id"] in skip:
            continue
        report = await settle_order(store, broker, row, clock)
        touched.add(row["proposal_id"])
        filled = f", filled {report.filled:f}" if report.filled else ""
        messages.append(f"order {report.client_order_id} of {row['proposal_id']}: "
                        f"{report.status.replace('_', ' ')}{filled}")
        log.warning("reconciled %s → %s", report.client_order_id, report.status)
    for pid in unsettled_proposals(store, touched):
        if pid in skip:
            continue
        status, lines = settle(store, pid, clock(), via="reconcile")
        messages.append(f"{pid} was interrupted by a restart; settled as {status.replace('_', ' ')}"
                        + (f" ({'; '.join(lines)})" if lines else ""))
    return messages
