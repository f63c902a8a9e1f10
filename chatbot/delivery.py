"""Pushing alerts to chats: the notifier contract and the outbox drain.

Alerts wait in the store's outbox until each enabled transport has delivered them. A chat
outage only delays them: a failure is recorded with a retry time (the server's `retry_after`
when it gives one, exponential backoff otherwise) and the alert stays queued.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from chatbot.replies import Reply

log = logging.getLogger(__name__)

BASE_BACKOFF_S = 5.0
DEFAULT_BATCH = 50


class DeliveryError(Exception):
    """A message could not be delivered; says whether and when to try again."""

    def __init__(self, message: str, *, retry_after: float | None = None, permanent: bool = False):
        super().__init__(message)
        self.retry_after = retry_after
        self.permanent = permanent


class Notifier(Protocol):
    """Sends one reply to one chat of one transport; raises DeliveryError on failure."""

    transport: str

    async def send(self, chat_id: str, reply: Reply) -> None: ...


class OutboxStore(Protocol):
    """The part of core.store.Store the drain uses."""

    def pending_alerts(self, transport: str, now: datetime, limit: int) -> list[dict[str, Any]]: ...

    def subscribers(self, transport: str) -> list[str]: ...

    def mark_delivered(self, alert_id: Any, transport: str, at: datetime) -> None: ...

    def mark_failed(self, alert_id: Any, transport: str, error: str, retry_at: datetime) -> None: ...

    def mark_chat_delivered(self, alert_id: Any, transport: str, chat_id: str, at: datetime) -> None: ...

    def delivered_chats(self, alert_id: Any, transport: str) -> set[str]: ...


@dataclass
class _Outcome:
    sent: int = 0
    permanent: int = 0
    transient: DeliveryError | None = None


def backoff_seconds(attempts: int, max_backoff_s: float) -> float:
    """5 s, 10 s, 20 s … after each failed attempt, capped at `max_backoff_s`."""
    return min(float(max_backoff_s), BASE_BACKOFF_S * 2 ** min(max(attempts, 0), 30))


async def drain_outbox(
    store: OutboxStore,
    notifiers: Sequence[Notifier],
    render_alert: Callable[[dict[str, Any]], Reply],
    now: Callable[[], datetime],
    *,
    max_backoff_s: float = 300,
    limit: int = DEFAULT_BATCH,
) -> int:
    """Deliver due alerts to every subscribed chat of each transport; return messages delivered."""
    delivered = 0
    for notifier in notifiers:
        # One try per transport: a dead Telegram must not silence Discord, and vice versa.
        try:
            delivered += await _drain_transport(store, notifier, render_alert, now, max_backoff_s, limit)
        except Exception:
            log.exception("outbox: draining %s failed; its alerts stay queued", notifier.transport)
    return delivered


async def _drain_transport(
    store: OutboxStore,
    notifier: Notifier,
    render_alert: Callable[[dict[str, Any]], Reply],
    now: Callable[[], datetime],
    max_backoff_s: float,
    limit: int,
) -> int:
    transport = notifier.transport
    chats = list(store.subscribers(transport))
    if not chats:
        return 0  # nobody to tell yet: alerts wait rather than being marked as sent
    delivered = 0
    for alert in store.pending_alerts(transport, now(), limit):
        alert_id = alert["id"]
        try:
            reply = render_alert(alert)
        except Exception as exc:
            log.exception("outbox: alert %s (%s) cannot be rendered", alert_id, alert.get("kind"))
            retry_at = now() + timedelta(seconds=max_backoff_s)
            store.mark_failed(alert_id, transport, f"render failed: {exc!r}", retry_at)
            continue
        told = store.delivered_chats(alert_id, transport) if alert.get("attempts") else set()
        todo = [c for c in chats if c not in told]

        def sent(chat_id: str, alert_id: Any = alert_id) -> None:
            store.mark_chat_delivered(alert_id, transport, chat_id, now())

        outcome = await _send_to_chats(notifier, todo, reply, alert_id, sent)
        delivered += outcome.sent
        if outcome.transient is not None:
            err = outcome.transient
            if err.retry_after is not None:
                delay = max(err.retry_after, 0.0)
            else:
                delay = backoff_seconds(int(alert.get("attempts") or 0), max_backoff_s)
            store.mark_failed(alert_id, transport, str(err), now() + timedelta(seconds=delay))
            log.warning(
                "outbox: %s unavailable (%s); alert %s retried in %.0f s",
                transport,
                err,
                alert_id,
                delay,
            )
            break  # the transport is down or throttled: the rest waits for the next drain
        if outcome.sent or told:
            store.mark_delivered(alert_id, transport, now())
        else:
            # Every chat refused for good (bot removed, chat gone): keep it, retry rarely.
            retry_at = now() + timedelta(seconds=max_backoff_s)
            store.mark_failed(alert_id, transport, "every chat refused delivery", retry_at)
    return delivered


async def _send_to_chats(notifier: Notifier, chats: Sequence[str], reply: Reply, alert_id: Any,
                         sent: Callable[[str], None]) -> _Outcome:
    outcome = _Outcome()
    for chat_id in chats:
        try:
            await notifier.send(chat_id, reply)
        except DeliveryError as exc:
            if not exc.permanent:
                outcome.transient = exc
                return outcome
            outcome.permanent += 1
            log.error(
                "outbox: %s chat %s refused alert %s for good: %s",
                notifier.transport,
                chat_id,
                alert_id,
                exc,
            )
        except Exception as exc:
            # A bug in a notifier: back off like an outage rather than hammer on every drain.
            log.exception("outbox: %s notifier crashed on alert %s", notifier.transport, alert_id)
            outcome.transient = DeliveryError(f"notifier error: {exc!r}")
            return outcome
        else:
            outcome.sent += 1
            sent(chat_id)
    return outcome
