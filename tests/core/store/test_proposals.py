"""Proposals: exact round trips, and status transitions that are compare-and-set and audited."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from hypothesis import given, settings

from core.errors import StoreError
from core.models import Proposal
from core.store import Store
from tests.core.store import MIN, T0, make_proposal
from tests.core.test_codec import proposals


def test_a_proposal_round_trips_exactly_and_its_creation_is_audited(store: Store) -> None:
    p = make_proposal()
    store.save_proposal(p)
    stored = store.get_proposal("P-1")
    assert stored is not None
    assert stored.proposal == p
    assert str(stored.proposal.orders[0].amount) == "0.14400"
    assert (stored.status, stored.updated_at, stored.decided_by, stored.detail) == (
        "proposed",
        T0,
        None,
        "",
    )
    assert store.get_proposal("P-2") is None
    [row] = store.audit_log()
    assert (row["action"], row["subject"], row["at"]) == ("proposal.proposed", "P-1", T0)


@settings(max_examples=30, deadline=None)
@given(proposals)
def test_any_proposal_comes_back_from_the_store_as_it_went_in(p: Proposal) -> None:
    with Store.memory() as s:
        s.save_proposal(p)
        stored = s.get_proposal(p.id)
    assert stored is not None and stored.proposal == p
    assert [str(o.amount) for o in stored.proposal.orders] == [str(o.amount) for o in p.orders]


def test_saving_the_same_proposal_twice_is_refused(store: Store) -> None:
    store.save_proposal(make_proposal())
    store.transition("P-1", "proposed", "executed", T0, "engine", "engine")
    with pytest.raises(StoreError, match="already stored"):
        store.save_proposal(make_proposal())
    assert store.get_proposal("P-1").status == "executed"


def test_second_approval_of_the_same_proposal_loses_the_compare_and_set(store: Store) -> None:
    store.save_proposal(make_proposal())
    assert store.transition("P-1", "proposed", "approved", T0 + MIN, "alice", "telegram", chat_id=42)
    assert not store.transition("P-1", "proposed", "approved", T0 + MIN, "bob", "discord")
    stored = store.get_proposal("P-1")
    assert (stored.status, stored.decided_by, stored.decided_via) == ("approved", "alice", "telegram")
    approvals = [r for r in store.audit_log() if r["action"] == "proposal.approved"]
    assert [(r["actor"], r["chat_id"], r["detail"]) for r in approvals] == [
        ("alice", "42", "proposed → approved")
    ]


def test_concurrent_approvals_from_two_connections_let_exactly_one_win(db_path: Path) -> None:
    setup = Store.open(db_path)
    ids = [f"P-{i}" for i in range(20)]
    for pid in ids:
        setup.save_proposal(make_proposal(pid))
    stores = [setup, Store.open(db_path)]
    wins: list[list[str]] = [[], []]

    errors: list[BaseException] = []

    def approve(n: int, pid: str, start: threading.Barrier) -> None:
        start.wait()
        try:
            if stores[n].transition(pid, {"proposed"}, "approved", T0, f"user{n}", "telegram"):
                wins[n].append(pid)
        except BaseException as exc:  # a "database is locked" would be a failure too
            errors.append(exc)

    for pid in ids:
        start = threading.Barrier(2)
        threads = [threading.Thread(target=approve, args=(n, pid, start)) for n in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    assert sorted(wins[0] + wins[1]) == sorted(ids)  # each proposal approved exactly once
    audit = [r for r in setup.audit_log(limit=500) if r["action"] == "proposal.approved"]
    assert sorted(r["subject"] for r in audit) == sorted(ids)
    for s in stores:
        s.close()


def test_a_transition_from_the_wrong_status_or_of_an_unknown_id_returns_false(store: Store) -> None:
    store.save_proposal(make_proposal())
    assert not store.transition("P-9", "proposed", "approved", T0, "alice", "telegram")
    assert not store.transition("P-1", {"approved", "executing"}, "executed", T0, "e", "engine")
    with pytest.raises(ValueError, match="unknown proposal status"):
        store.transition("P-1", "proposed", "aproved", T0, "alice", "telegram")


def test_execution_steps_keep_who_approved_and_record_the_latest_detail(store: Store) -> None:
    store.save_proposal(make_proposal())
    store.transition("P-1", "proposed", "approved", T0, "alice", "telegram")
    store.transition("P-1", "approved", "executing", T0 + MIN, "system", "engine")
    store.transition(
        "P-1", {"executing"}, "partially_executed", T0 + 2 * MIN, "system", "engine", "leg 1 rejected"
    )
    stored = store.get_proposal("P-1")
    assert (stored.status, stored.updated_at, stored.decided_by, stored.detail) == (
        "partially_executed",
        T0 + 2 * MIN,
        "alice",
        "leg 1 rejected",
    )
    assert store.audit_log(limit=1)[0]["detail"] == "executing → partially_executed: leg 1 rejected"


def test_open_proposals_are_the_undecided_unexpired_ones(store: Store) -> None:
    store.save_proposal(make_proposal("P-old", T0 - 30 * MIN))
    store.save_proposal(make_proposal("P-new", T0))
    store.save_proposal(make_proposal("P-done", T0))
    store.transition("P-done", "proposed", "rejected", T0, "alice", "console")
    assert [s.id for s in store.open_proposals(T0 + MIN)] == ["P-new"]
    assert [s.id for s in store.open_proposals(T0 + 15 * MIN)] == []  # expiry is exclusive


def test_expiry_moves_only_overdue_proposals_and_audits_each(store: Store) -> None:
    store.save_proposal(make_proposal("P-old", T0 - 30 * MIN))
    store.save_proposal(make_proposal("P-new", T0))
    assert store.expire_proposals(T0) == ["P-old"]
    assert store.expire_proposals(T0) == []
    assert store.get_proposal("P-old").status == "expired"
    assert store.get_proposal("P-new").status == "proposed"
    assert store.audit_log(limit=1)[0]["action"] == "proposal.expired"


def test_a_new_proposal_supersedes_the_open_ones(store: Store) -> None:
    for pid in ("P-1", "P-2", "P-3"):
        store.save_proposal(make_proposal(pid))
    store.transition("P-2", "proposed", "approved", T0, "alice", "telegram")
    assert store.supersede_open("P-3", T0 + MIN) == ["P-1"]
    assert [store.get_proposal(p).status for p in ("P-1", "P-2", "P-3")] == [
        "superseded",
        "approved",
        "proposed",
    ]


def test_recent_proposals_are_newest_first_and_limited(store: Store) -> None:
    for i in range(5):
        store.save_proposal(make_proposal(f"P-{i}", T0 + i * MIN))
    assert [s.id for s in store.recent_proposals(3)] == ["P-4", "P-3", "P-2"]
