"""The outbox drain: fan-out per transport, retry_after, backoff, nothing lost."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chatbot.delivery import DeliveryError, backoff_seconds, drain_outbox
from chatbot.replies import Reply

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class MemoryOutbox:
    """In-memory stand-in for core.store's outbox methods, with the same semantics."""

    def __init__(self, subscribers: dict[str, list[str]]) -> None:
        self.subs = subscribers
        self.alerts: list[dict[str, Any]] = []
        self.state: dict[tuple[int, str], dict[str, Any]] = {}
        self.delivered: list[tuple[int, str, datetime]] = []
        self.failures: list[tuple[int, str, str, datetime]] = []
        self._ids = itertools.count(1)

    def enqueue(self, kind: str, payload: dict[str, Any], at: datetime) -> int:
        alert_id = next(self._ids)
        self.alerts.append({"id": alert_id, "key": kind, "kind": kind, "payload": payload, "created_at": at})
        return alert_id

    def pending_alerts(self, transport: str, now: datetime, limit: int) -> list[dict[str, Any]]:
        due = []
        for alert in self.alerts:
            st = self.state.get((alert["id"], transport), {})
            if st.get("delivered_at") is None and (st.get("retry_at") or now) <= now:
                due.append({**alert, "attempts": st.get("attempts", 0)})
        return due[:limit]

    def pending(self, transport: str) -> list[int]:
        far = datetime.max.replace(tzinfo=UTC)
        return [a["id"] for a in self.pending_alerts(transport, far, 1000)]

    def subscribers(self, transport: str) -> list[str]:
        return list(self.subs.get(transport, []))

    def mark_delivered(self, alert_id: int, transport: str, at: datetime) -> None:
        st = self.state.setdefault((alert_id, transport), {"attempts": 0})
        assert st.get("delivered_at") is None, f"alert {alert_id} delivered twice on {transport}"
        st.update(attempts=st["attempts"] + 1, delivered_at=at, retry_at=None)
        self.delivered.append((alert_id, transport, at))

    def mark_chat_delivered(self, alert_id: int, transport: str, chat_id: str, at: datetime) -> None:
        self.state.setdefault((alert_id, f"{transport}#{chat_id}"), {})["delivered_at"] = at

    def delivered_chats(self, alert_id: int, transport: str) -> set[str]:
        return {t.partition("#")[2] for (i, t), st in self.state.items()
                if i == alert_id and t.startswith(transport + "#") and st.get("delivered_at")}

    def mark_failed(self, alert_id: int, transport: str, error: str, retry_at: datetime) -> None:
        st = self.state.setdefault((alert_id, transport), {"attempts": 0})
        st.update(attempts=st["attempts"] + 1, retry_at=retry_at)
        self.failures.append((alert_id, transport, error, retry_at))


class ScriptedNotifier:
    """Records deliveries; raises the scripted errors first (per chat, or for any chat)."""

    def __init__(self, transport: str, errors: dict[str, list[Exception]] | None = None) -> None:
        self.transport = transport
        self.errors = errors or {}
        self.sent: list[tuple[str, str]] = []

    async def send(self, chat_id: str, reply: Reply) -> None:
        queue = self.errors.get(chat_id) or self.errors.get("*")
        if queue:
            raise queue.pop(0)
        self.sent.append((chat_id, reply.text))


def render(alert: dict[str, Any]) -> Reply:
    if alert["payload"].get("broken"):
        raise KeyError("asset")
    return Reply(text=alert["payload"]["text"], level="alert")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def test_every_subscribed_chat_of_every_transport_gets_each_alert():
    store = MemoryOutbox({"telegram": ["1", "2"], "discord": ["900"]})
    store.enqueue("drift", {"text": "BTC drift +6pp"}, T0)
    store.enqueue("funding", {"text": "funding 54.75% APR"}, T0)
    tg, dc = ScriptedNotifier("telegram"), ScriptedNotifier("discord")
    assert await drain_outbox(store, [tg, dc], render, lambda: T0) == 6
    assert tg.sent == [
        ("1", "BTC drift +6pp"),
        ("2", "BTC drift +6pp"),
        ("1", "funding 54.75% APR"),
        ("2", "funding 54.75% APR"),
    ]
    assert len(dc.sent) == 2
    assert store.pending("telegram") == store.pending("discord") == []
    assert await drain_outbox(store, [tg, dc], render, lambda: T0) == 0  # nothing twice


async def test_a_dead_transport_does_not_silence_the_others():
    store = MemoryOutbox({"telegram": ["1"], "discord": ["900"]})
    store.enqueue("drift", {"text": "BTC drift"}, T0)

    class Exploding(ScriptedNotifier):
        async def send(self, chat_id: str, reply: Reply) -> None:
            raise DeliveryError("telegram unavailable: 502", permanent=False)

    dc = ScriptedNotifier("discord")
    assert await drain_outbox(store, [Exploding("telegram"), dc], render, lambda: T0) == 1
    assert dc.sent == [("900", "BTC drift")]
    assert store.pending("telegram") == [1]


async def test_a_crashing_store_call_for_one_transport_is_contained():
    store = MemoryOutbox({"telegram": ["1"], "discord": ["900"]})
    store.enqueue("drift", {"text": "BTC drift"}, T0)
    original = store.subscribers

    def subscribers(transport: str) -> list[str]:
        if transport == "telegram":
            raise RuntimeError("database is locked")
        return original(transport)

    store.subscribers = subscribers  # type: ignore[method-assign]
    dc = ScriptedNotifier("discord")
    assert await drain_outbox(store, [ScriptedNotifier("telegram"), dc], render, lambda: T0) == 1


async def test_retry_after_is_honoured_then_delivery_resumes():
    store = MemoryOutbox({"telegram": ["1"]})
    store.enqueue("a", {"text": "first"}, T0)
    store.enqueue("b", {"text": "second"}, T0)
    tg = ScriptedNotifier("telegram", {"*": [DeliveryError("flood", retry_after=42)]})
    assert await drain_outbox(store, [tg], render, lambda: T0) == 0
    assert store.failures == [(1, "telegram", "flood", at(42))]
    assert tg.sent == []  # throttled: the second alert was not even tried
    assert await drain_outbox(store, [tg], render, lambda: at(41)) == 1  # the untried one
    assert await drain_outbox(store, [tg], render, lambda: at(42)) == 1
    assert sorted(tg.sent) == [("1", "first"), ("1", "second")]


async def test_transient_failures_back_off_exponentially_and_nothing_is_lost():
    store = MemoryOutbox({"telegram": ["1"]})
    store.enqueue("a", {"text": "only"}, T0)
    errors = [DeliveryError("502") for _ in range(4)]
    tg = ScriptedNotifier("telegram", {"*": errors})
    clock = [T0]
    for _ in range(4):
        await drain_outbox(store, [tg], render, lambda: clock[0])
        clock[0] = store.failures[-1][3]
    delays = [
        (f[3] - prev).total_seconds()
        for f, prev in zip(store.failures, [T0] + [f[3] for f in store.failures[:-1]], strict=True)
    ]
    assert delays == [5, 10, 20, 40]
    assert await drain_outbox(store, [tg], render, lambda: clock[0]) == 1
    assert tg.sent == [("1", "only")]


def test_backoff_is_capped():
    assert backoff_seconds(0, 300) == 5
    assert backoff_seconds(6, 300) == 300
    assert backoff_seconds(10_000, 300) == 300


async def test_a_chat_that_refuses_for_good_does_not_block_the_others():
    store = MemoryOutbox({"telegram": ["gone", "1"]})
    store.enqueue("a", {"text": "hello"}, T0)
    tg = ScriptedNotifier("telegram", {"gone": [DeliveryError("blocked", permanent=True)]})
    assert await drain_outbox(store, [tg], render, lambda: T0) == 1
    assert store.pending("telegram") == []


async def test_when_every_chat_refuses_the_alert_is_kept_for_a_rare_retry():
    store = MemoryOutbox({"telegram": ["gone"]})
    store.enqueue("a", {"text": "hello"}, T0)
    tg = ScriptedNotifier("telegram", {"gone": [DeliveryError("blocked", permanent=True)]})
    assert await drain_outbox(store, [tg], render, lambda: T0, max_backoff_s=600) == 0
    assert store.failures[-1][3] == at(600)
    assert store.pending("telegram") == [1]


async def test_no_subscribers_leaves_alerts_queued():
    store = MemoryOutbox({})
    store.enqueue("a", {"text": "hello"}, T0)
    assert await drain_outbox(store, [ScriptedNotifier("telegram")], render, lambda: T0) == 0
    assert store.pending("telegram") == [1] and not store.failures


async def test_an_alert_that_cannot_be_rendered_does_not_block_the_queue():
    store = MemoryOutbox({"telegram": ["1"]})
    store.enqueue("bad", {"broken": True}, T0)
    store.enqueue("good", {"text": "fine"}, T0)
    tg = ScriptedNotifier("telegram")
    assert await drain_outbox(store, [tg], render, lambda: T0) == 1
    assert store.failures[0][0] == 1 and "render failed" in store.failures[0][2]


async def test_a_notifier_bug_backs_off_instead_of_hammering():
    store = MemoryOutbox({"telegram": ["1"]})
    store.enqueue("a", {"text": "x"}, T0)
    tg = ScriptedNotifier("telegram", {"*": [ZeroDivisionError("oops")]})
    assert await drain_outbox(store, [tg], render, lambda: T0) == 0
    assert store.failures[0][3] == at(5)


async def test_drains_the_real_store_outbox():
    store_module = pytest.importorskip("core.store")
    store = store_module.Store.memory()
    store.subscribe("telegram", "1", T0)
    store.subscribe("discord", "900", T0)
    store.enqueue_alert("drift:BTC", "drift", {"text": "BTC drift +6pp"}, T0, timedelta(hours=4))
    tg = ScriptedNotifier("telegram", {"*": [DeliveryError("flood", retry_after=30)]})
    dc = ScriptedNotifier("discord")
    assert await drain_outbox(store, [tg, dc], render, lambda: T0) == 1
    assert store.pending_alerts("discord", at(3600), 10) == []
    assert store.pending_alerts("telegram", at(29), 10) == []  # retry_after honoured
    assert await drain_outbox(store, [tg, dc], render, lambda: at(30)) == 1
    assert tg.sent == [("1", "BTC drift +6pp")] and dc.sent == [("900", "BTC drift +6pp")]
    assert await drain_outbox(store, [tg, dc], render, lambda: at(3600)) == 0


async def test_after_a_partial_outage_only_the_chats_not_yet_told_get_the_alert():
    store = MemoryOutbox({"telegram": ["1", "2", "3"]})
    store.enqueue("drift", {"text": "BTC drift +6pp"}, T0)
    tg = ScriptedNotifier("telegram", {"2": [DeliveryError("502 Bad Gateway")]})
    assert await drain_outbox(store, [tg], render, lambda: T0) == 1
    assert store.pending("telegram") == [1]
    assert await drain_outbox(store, [tg], render, lambda: at(60)) == 2
    assert tg.sent == [("1", "BTC drift +6pp"), ("2", "BTC drift +6pp"), ("3", "BTC drift +6pp")]
    assert store.pending("telegram") == []


async def test_the_real_store_remembers_which_chats_were_told_across_a_restart(tmp_path):
    from core.store import Store

    path = tmp_path / "premia.db"
    with Store.open(path) as store:
        for chat in ("1", "2"):
            store.subscribe("telegram", chat, T0)
        store.enqueue_alert("drift:BTC", "drift", {"text": "BTC drift +6pp"}, T0, timedelta(hours=4))
        tg = ScriptedNotifier("telegram", {"2": [DeliveryError("timed out")]})
        assert await drain_outbox(store, [tg], render, lambda: T0) == 1
    with Store.open(path) as store:  # the bot restarted
        tg = ScriptedNotifier("telegram")
        assert await drain_outbox(store, [tg], render, lambda: at(3600)) == 1
        assert tg.sent == [("2", "BTC drift +6pp")]
        assert store.pending_alerts("telegram", at(7200), 10) == []
