"""Alerts from the outbox: rendering (what fired, why, what is proposed), mutes, and the pump."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from chatbot.alert_render import AlertPump, AlertRenderer, MutingOutbox
from chatbot.replies import Reply
from tests.chatbot.test_commands_world import World, world_fixture  # noqa: F401 — the `world` fixture

TRIGGER = {
    "rule": "volatility_spike",
    "asset": "BTC",
    "explanation": "BTC 7-day volatility is 2.4× its 30-day baseline: reduce BTC",
    "values": {"ratio": "2.40", "threshold": "2.0"},
    "state_from": "normal",
    "state_to": "spike",
}


class Recorder:
    """A notifier that records what it was asked to send."""

    transport = "telegram"

    def __init__(self) -> None:
        self.sent: list[tuple[str, Reply]] = []
        self.arrived = asyncio.Event()

    async def send(self, chat_id: str, reply: Reply) -> None:
        self.sent.append((chat_id, reply))
        self.arrived.set()


def renderer(world: World) -> AlertRenderer:
    return AlertRenderer(world.store, world.settings, world.clock)


def queue(world: World, payload: dict, key: str = "trigger:volatility_spike:BTC", kind: str = "trigger"):
    alert_id = world.store.enqueue_alert(key, kind, payload, world.clock(), timedelta(minutes=1))
    assert alert_id is not None
    return world.store.pending_alerts("telegram", world.clock(), 10)[-1]


async def test_trigger_alert_with_its_proposal_and_buttons(world: World):
    pid = (await world.say("/plan")).subject
    alert = queue(world, {**TRIGGER, "proposal_id": pid})
    reply = renderer(world)(alert)
    assert reply.level == "alert"
    assert reply.title == "Rule fired"
    lines = reply.text.splitlines()
    assert lines[0] == "• BTC 7-day volatility is 2.4× its 30-day baseline: reduce BTC [normal → spike]"
    assert lines[1] == "  ↳ ratio 2.40, threshold 2.0"
    assert f"Proposal {pid} · expires in 13 min" in reply.text
    assert "Costs ≈" in reply.text
    assert reply.tables[-1].headers == ("#", "side", "what", "amount", "USDT")
    assert [b.action for b in reply.buttons] == [f"approve:{pid}", f"reject:{pid}"]
    assert reply.subject == pid and reply.extra["expires_in_s"] == "780"


async def test_a_late_alert_never_offers_dead_buttons(world: World):
    pid = (await world.say("/plan")).subject
    alert = queue(world, {"triggers": [TRIGGER], "proposal_id": pid}, kind="proposal")
    world.clock.advance(minutes=30)  # an outage held it back
    reply = renderer(world)(alert)
    assert reply.title == "New proposal"
    assert not reply.buttons
    assert f"Proposal {pid} is already expired: /plan for the current one." in reply.text
    assert "(raised 30 min ago, at 12:02 UTC; delivery was late)" in reply.text


async def test_other_kinds_and_odd_payloads_still_render(world: World):
    render = renderer(world)
    down = render({"id": 1, "kind": "feed_down", "payload": {"text": "binance: 503 for 3 polls"},
                   "created_at": world.clock()})
    assert (down.title, down.text) == ("Market feed down", "binance: 503 for 3 polls")
    odd = render({"id": 2, "kind": "mystery_kind", "payload": ["not", "a", "dict"]})
    assert odd.title == "Mystery kind" and odd.text == "['not', 'a', 'dict']"
    unknown = render({"id": 3, "kind": "trigger", "payload": {**TRIGGER, "proposal_id": "P-GONE00"}})
    assert not unknown.buttons and "reduce BTC" in unknown.text


async def test_muted_rules_are_dropped_not_delayed(world: World):
    world.store.subscribe("telegram", "1001")
    await world.say("/mute volatility_spike 1h")
    queue(world, TRIGGER)
    queue(world, {**TRIGGER, "rule": "fear_greed", "asset": None}, key="trigger:fear_greed")
    outbox = MutingOutbox(world.store, world.clock)
    due = outbox.pending_alerts("telegram", world.clock(), 10)
    assert [a["payload"]["rule"] for a in due] == ["fear_greed"]
    left = world.store.pending_alerts("telegram", world.clock(), 10)
    assert [a["key"] for a in left] == ["trigger:fear_greed"]
    await world.say("/mute all 1h")
    assert outbox.pending_alerts("telegram", world.clock(), 10) == []


async def test_pump_delivers_as_soon_as_it_is_poked(world: World):
    world.store.subscribe("telegram", "1001")
    recorder = Recorder()
    pump = AlertPump(world.store, [recorder], renderer(world), world.clock, interval_s=3600)
    task = asyncio.create_task(pump.run())
    try:
        queue(world, TRIGGER)
        pump.poke()
        await asyncio.wait_for(recorder.arrived.wait(), 2)
        [(chat, reply)] = recorder.sent
        assert chat == "1001" and "reduce BTC" in reply.text
        assert world.store.pending_alerts("telegram", world.clock(), 10) == []
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
