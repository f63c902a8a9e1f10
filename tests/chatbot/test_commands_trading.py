"""Trading and admin commands: /approve, /reject, /pause, /resume, /mute, on a real store file."""

from __future__ import annotations

from datetime import datetime

from core.errors import ExecutionError
from core.execution import MarketMovedError
from core.planner import plan as make_plan
from tests.chatbot.test_commands_world import (
    DISCORD_TRADER,
    GROUP_TRADER,
    World,
    drifted_doc,
    make_world,
    paper_world,
    parse,
    world_fixture,  # noqa: F401 — the `world` fixture
)


async def open_id(world: World) -> str:
    reply = await world.say("/plan")
    assert reply.subject
    return reply.subject


async def test_approve_goes_to_the_executor_with_who_and_where(world: World):
    pid = await open_id(world)
    reply = await world.say(f"/approve {pid.lower()}", GROUP_TRADER)  # ids are case-insensitive
    assert world.executor is not None
    assert world.executor.calls == [(pid, "telegram:1001", "telegram", "-100500")]
    assert reply.subject == pid
    assert reply.title == f"Proposal {pid} · executed (paper)"
    assert reply.text.startswith("Approved by Alice.\nExecuted: 4 of 4 legs filled\nFees 62.00 USDT"
                                 " · slippage +0.05%\nFunding at the next settlement 1.25 USDT (received)")
    assert "Now: BTC 24% · " in reply.text
    assert reply.tables[0].headers == ("#", "side", "market", "filled", "avg", "state")
    assert reply.tables[0].rows[0][:3] == ("1", "sell", "BTC")
    assert reply.tables[0].rows[0][-1] == "filled"
    stored = world.store.get_proposal(pid)
    assert stored is not None and stored.status == "executed" and stored.decided_by == "telegram:1001"


async def test_a_second_approval_changes_nothing_and_says_so(world: World):
    pid = await open_id(world)
    await world.say(f"/approve {pid}")
    typed = await world.say(f"/approve {pid}", DISCORD_TRADER)
    assert typed.level == "error"
    assert typed.text == f"{pid} is already executed by 1001 via telegram at 12:02 UTC. Nothing changed."
    pressed = await world.press(f"approve:{pid}", DISCORD_TRADER)
    # A press re-draws the pressed message in its true state, with no buttons left to press.
    assert pressed.level == "info" and not pressed.buttons
    assert pressed.title == f"Proposal {pid} · already executed"
    assert "Nothing changed." in pressed.text
    assert world.executor is not None and len(world.executor.calls) == 1


async def test_an_expired_proposal_cannot_be_approved(world: World):
    pid = await open_id(world)
    world.clock.advance(minutes=20)
    reply = await world.press(f"approve:{pid}")
    assert reply.title == f"Proposal {pid} · already expired"
    assert "expired 7 min ago. Nothing changed; /plan for a fresh one." in reply.text
    assert not reply.buttons
    assert world.executor is not None and world.executor.calls == []
    typed = await world.say(f"/reject {pid}")
    assert typed.level == "error" and "expired" in typed.text


async def test_pause_blocks_approvals_until_resume(world: World):
    pid = await open_id(world)
    assert (await world.say("/pause")).title == "⏸ Paused"
    blocked = await world.press(f"approve:{pid}")
    assert blocked.level == "error"
    assert blocked.text.startswith("Trading is paused (by Alice)")
    assert world.executor is not None and world.executor.calls == []
    assert "Already paused" in (await world.say("/pause")).text
    assert (await world.say("/resume")).title == "▶ Resumed"
    assert (await world.say("/resume")).text == "Trading is not paused."
    done = await world.press(f"approve:{pid}")
    assert done.title.endswith("executed (paper)")
    actions = [(r["action"], r["actor"]) for r in world.store.audit_log(20)]
    assert ("pause", "telegram:1001") in actions and ("resume", "telegram:1001") in actions


async def test_plan_while_paused_shows_a_what_if_without_buttons_and_stores_nothing(world: World):
    paused = await world.say("/pause")
    assert "no new proposal is made" in paused.text and "/plan shows what I would propose" in paused.text
    reply = await world.say("/plan")
    assert reply.text.startswith("⏸ Trading is paused (by Alice): this is what I would propose.")
    assert reply.buttons == () and reply.tables  # the orders, but nothing to press
    assert world.store.get_proposal(reply.subject) is None
    await world.say("/resume")
    after = await world.say("/plan")
    assert after.buttons and world.store.get_proposal(after.subject).status == "proposed"


async def test_pause_survives_a_new_dispatcher(tmp_path):
    w = make_world(tmp_path)
    pid = await open_id(w)
    await w.say("/pause")
    w.store.close()
    again = make_world(tmp_path)  # same store file: a restart
    assert (await again.press(f"approve:{pid}")).text.startswith("Trading is paused")
    again.store.close()


async def test_market_moved_refusal_offers_the_fresh_proposal(world: World):
    pid = await open_id(world)
    snap, portfolio, ev = world.engine.latest()
    fresh = make_plan(ev, snap, portfolio, world.settings, strategy="balanced-aggression",
                      proposal_id="P-FRESH1")
    world.store.save_proposal(fresh)
    refusal = MarketMovedError("BTC moved 1.4% since the proposal (tolerance 1.0%)", "P-FRESH1")
    assert world.executor is not None
    world.executor.refuse_with = refusal
    reply = await world.press(f"approve:{pid}")
    assert reply.subject == "P-FRESH1"
    assert reply.text.startswith(f"{pid} was not executed: BTC moved 1.4%")
    assert [b.action for b in reply.buttons] == ["approve:P-FRESH1", "reject:P-FRESH1"]


async def test_other_refusals_are_private_errors(world: World):
    pid = await open_id(world)
    assert world.executor is not None
    world.executor.refuse_with = ExecutionError("not enough USDT for leg 2")
    reply = await world.press(f"approve:{pid}")
    assert reply.level == "error"
    assert reply.text == f"{pid} was not executed: not enough USDT for leg 2"


async def test_reject_without_an_executor_is_audited(tmp_path):
    w = make_world(tmp_path, executor=False)
    pid = await open_id(w)
    reply = await w.press(f"reject:{pid}", GROUP_TRADER)
    assert reply.title == f"Proposal {pid} · rejected"
    assert reply.text.startswith("Rejected by Alice. Nothing was traded.")
    assert not reply.buttons
    row = w.store.audit_log(1)[0]
    assert (row["actor"], row["via"], row["chat_id"], row["action"], row["subject"]) == (
        "telegram:1001", "telegram", "-100500", "proposal.rejected", pid)
    no_exec = await w.press(f"approve:{(await w.say('/plan')).subject}")
    assert no_exec.level == "error" and "no executor" in no_exec.text
    w.store.close()


async def test_unknown_or_malformed_ids(world: World):
    unknown = await world.say("/approve P-ABCDEF")
    assert unknown.text == "I have no proposal P-ABCDEF. /plan shows the open one."
    assert (await world.say("/approve")).text == "Missing argument.\nUsage: /approve ID"
    assert (await world.say("/approve a b")).text == "Too many arguments.\nUsage: /approve ID"
    assert "is not a proposal id" in (await world.say("/reject <script>")).text
    assert (await world.press("approve")).text == "Missing argument.\nUsage: /approve ID"
    assert (await world.press("status")).text == "This button is no longer valid."
    assert (await world.press("")).text == "This button is no longer valid."


async def test_mute_sets_and_ends_a_timed_mute(world: World):
    reply = await world.say("/mute volatility_spike 2h")
    assert reply.text.startswith("🔇 Muted volatility_spike alerts for 2 h, until 14:02 UTC.")
    flag = world.store.get_flag("mute:volatility_spike")
    assert flag is not None and datetime.fromisoformat(flag["until"]) == world.clock.now.replace(hour=14)
    assert "volatility_spike until 14:02 UTC" in (await world.say("/mute")).text
    assert (await world.say("/mute volatility_spike off")).text == "🔔 volatility_spike alerts are back on."
    assert world.store.get_flag("mute:volatility_spike") is None
    assert (await world.say("/mute all 1d")).text.startswith("🔇 Muted every alert for 1 d")
    audit = [(r["action"], r["subject"]) for r in world.store.audit_log(5)]
    assert ("mute", "all") in audit and ("unmute", "volatility_spike") in audit


async def test_mute_argument_errors(world: World):
    assert "not a rule; pick one of: volatility_spike, fear_greed" in (await world.say("/mute moon 2h")).text
    assert (await world.say("/mute fear_greed soon")).text == "'soon' is not a duration; use 30m, 2h or 1d."
    assert (await world.say("/mute fear_greed 90d")).text == "Pick a duration between 1m and 30d."
    one = await world.say("/mute fear_greed")
    assert one.text.endswith("Usage: /mute RULE DURATION")


# ── end to end on paper: the real Executor and PaperBroker ──────────────────────────────────


async def test_approve_end_to_end_on_paper(tmp_path):
    w = await paper_world(tmp_path)
    pid = (await w.say("/plan")).subject
    assert pid is not None
    before = w.store.get_paper_book()
    reply = await w.press(f"approve:{pid}", GROUP_TRADER)
    assert reply.level == "info", reply.text
    assert reply.title == f"Proposal {pid} · executed (paper)"
    assert "Executed: 4 of 4 legs filled" in reply.text
    assert [r[-1] for r in reply.tables[0].rows] == ["filled"] * 4
    assert not reply.buttons and reply.subject == pid
    sp = w.store.get_proposal(pid)
    assert sp is not None and sp.status == "executed" and sp.decided_by == "telegram:1001"
    assert w.store.get_paper_book() != before
    status = (await w.say("/status")).as_plain_text()
    assert "Band ±5 pp: all within" in status  # the paper book now sits on its targets
    again = await w.press(f"approve:{pid}", DISCORD_TRADER)
    assert "Nothing changed." in again.text
    assert len(w.store.orders_for(pid)) == 4  # still one order per leg
    w.store.close()


async def test_paper_approval_refused_while_paused_then_executed(tmp_path):
    w = await paper_world(tmp_path)
    pid = (await w.say("/plan")).subject
    await w.say("/pause")
    assert (await w.say(f"/approve {pid}")).text.startswith("Trading is paused")
    assert w.store.orders_for(pid) == []
    await w.say("/resume")
    assert (await w.say(f"/approve {pid}")).title.endswith("executed (paper)")
    w.store.close()


async def test_paper_market_move_offers_a_fresh_proposal(tmp_path):
    w = await paper_world(tmp_path)
    pid = (await w.say("/plan")).subject
    assert w.engine.view is not None
    moved = drifted_doc()
    moved["assets"]["BTC"]["spot"]["price"] = "61800"  # +3%: beyond the 1% tolerance
    w.engine.view = parse(moved)
    reply = await w.press(f"approve:{pid}")
    assert reply.level == "info", reply.text
    assert reply.text.startswith(f"{pid} was not executed: Not executed: prices moved")
    fresh = reply.subject
    assert fresh and fresh != pid
    assert [b.action for b in reply.buttons] == [f"approve:{fresh}", f"reject:{fresh}"]
    old = w.store.get_proposal(pid)
    assert old is not None and old.status == "superseded"
    assert (await w.press(f"approve:{fresh}")).title.endswith("executed (paper)")
    w.store.close()


async def test_paper_reject_through_the_executor(tmp_path):
    w = await paper_world(tmp_path)
    pid = (await w.say("/plan")).subject
    reply = await w.say(f"/reject {pid}")
    assert reply.title == f"Proposal {pid} · rejected"
    assert (await w.say(f"/reject {pid}")).text.startswith(f"{pid} is already rejected by 1001 via telegram")
    w.store.close()
