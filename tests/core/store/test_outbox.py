"""The outbox: alerts deduplicated by key, delivery state per transport, and subscriptions."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from core.errors import StoreError
from core.store import Store
from tests.core.store import MIN, T0


def test_an_alert_with_the_same_key_is_dropped_within_the_cooldown_and_queued_after(
    store: Store,
) -> None:
    cool = timedelta(hours=4)
    first = store.enqueue_alert("funding_regime:BTC:high", "rule", {"apr": "0.12"}, T0, cool)
    assert first is not None
    assert store.enqueue_alert("funding_regime:BTC:high", "rule", {}, T0 + 3 * 60 * MIN, cool) is None
    assert store.enqueue_alert("funding_regime:ETH:high", "rule", {}, T0 + MIN, cool) is not None
    again = store.enqueue_alert("funding_regime:BTC:high", "rule", {}, T0 + cool, cool)
    assert again is not None and again > first
    keys = [a["key"] for a in store.pending_alerts("telegram", T0 + cool)]
    assert keys == ["funding_regime:BTC:high", "funding_regime:ETH:high", "funding_regime:BTC:high"]


def test_delivery_state_is_kept_per_transport(store: Store) -> None:
    a1 = store.enqueue_alert("k1", "rule", {"text": "BTC funding high"}, T0, MIN)
    a2 = store.enqueue_alert("k2", "rule", {}, T0 + MIN, MIN)
    store.mark_delivered(a1, "discord", T0 + MIN)
    store.mark_failed(a1, "telegram", "502 Bad Gateway", retry_at=T0 + 5 * MIN)

    assert [a["id"] for a in store.pending_alerts("discord", T0 + 2 * MIN)] == [a2]
    assert [a["id"] for a in store.pending_alerts("telegram", T0 + 2 * MIN)] == [a2]
    due = store.pending_alerts("telegram", T0 + 5 * MIN)
    assert [(a["id"], a["attempts"], a["last_error"]) for a in due] == [
        (a1, 1, "502 Bad Gateway"),
        (a2, 0, None),
    ]
    assert due[0]["payload"] == {"text": "BTC funding high"}
    assert due[0]["created_at"] == T0

    store.mark_delivered(a1, "telegram", T0 + 5 * MIN)
    store.mark_failed(a1, "telegram", "late duplicate failure", retry_at=T0)  # must not undo it
    assert [a["id"] for a in store.pending_alerts("telegram", T0 + 6 * MIN)] == [a2]


def test_failure_text_is_scrubbed_of_telegram_tokens(store: Store) -> None:
    a = store.enqueue_alert("k", "rule", {}, T0, MIN)
    token = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
    store.mark_failed(a, "telegram", f"POST https://api.telegram.org/bot{token}/sendMessage", T0)
    [pending] = store.pending_alerts("telegram", T0)
    assert token not in pending["last_error"] and "<token>" in pending["last_error"]


def test_delivery_marks_for_an_unknown_alert_are_refused(store: Store) -> None:
    with pytest.raises(StoreError, match="not in the outbox"):
        store.mark_delivered(999, "telegram", T0)


def test_pending_alerts_can_skip_old_ones_and_respect_the_limit(store: Store) -> None:
    for i in range(5):
        store.enqueue_alert(f"k{i}", "rule", {}, T0 + i * 60 * MIN, MIN)
    now = T0 + 4 * 60 * MIN
    assert [a["key"] for a in store.pending_alerts("console", now, limit=2)] == ["k0", "k1"]
    recent = store.pending_alerts("console", now, max_age=timedelta(hours=2))
    assert [a["key"] for a in recent] == ["k2", "k3", "k4"]


def test_queued_alerts_survive_a_restart(db_path: Path) -> None:
    with Store.open(db_path) as s:
        s.enqueue_alert("feed_dead:binance", "feed", {"since": "08:00"}, T0, timedelta(hours=1))
    with Store.open(db_path) as s:
        [alert] = s.pending_alerts("telegram", T0)
        assert (alert["key"], alert["payload"]) == ("feed_dead:binance", {"since": "08:00"})


def test_subscriptions_are_per_transport_and_idempotent(store: Store) -> None:
    assert store.subscribe("telegram", 111, at=T0)
    assert not store.subscribe("telegram", "111")
    assert store.subscribe("telegram", -1002)
    assert store.subscribe("discord", 111)
    assert store.subscribers("telegram") == ["111", "-1002"]
    assert store.unsubscribe("telegram", 111)
    assert not store.unsubscribe("telegram", 111)
    assert store.subscribers("telegram") == ["-1002"]
    assert store.subscribers("discord") == ["111"]
