"""Read commands through the console adapter and the dispatcher, on a real SQLite store file."""

from __future__ import annotations

import os

import pytest

from chatbot.commands import APOLOGY, REGISTRY, Command, CommandDispatcher
from chatbot.dispatch import CommandSpec
from chatbot.handlers import FNG_CREDIT
from chatbot.replies import Reply
from tests import scenarios as sc
from tests.chatbot import PNG_SIGNATURE
from tests.chatbot.test_commands_world import (
    DRIFTED,
    STRANGER,
    TRADER,
    VIEWER,
    World,
    balanced_doc,
    make_world,
    settings_for,
    world_fixture,  # noqa: F401 — the `world` fixture
)


async def test_status_through_the_console(world: World, tmp_path):
    out = await world.console(tmp_path).run_line("status")
    assert out.startswith("Portfolio 100,000 USDT · paper")
    assert "Last poll 2 min ago (12:00 UTC)" in out
    assert "BTC +26.0 pp" in out  # outside its band, said in words
    assert "Net futures +0.0% (target +0.0%) · hedged 0%" in out
    assert "No open proposal." in out
    # The weights table: asset, weight now, target, drift in pp.
    assert "BTC      50.0%   24.0%  +26.0" in out
    assert "stables  30.0%   20.0%  +10.0" in out


async def test_status_shows_the_share_of_spot_hedged_by_short_perpetuals(tmp_path):
    # 0.8333 BTC spot (50,000) and 0.7 BTC short on the perpetual (42,000) beside ETH and SOL:
    # 42,000 of 70,000 crypto spot is covered.
    short = [{"symbol": "BTC/USDT:USDT", "contracts": "-0.7"}]
    w = make_world(tmp_path, sc.snapshot(sc.four_assets(), sc.units(DRIFTED), fear_greed=20, positions=short))
    text = (await w.say("/status")).as_plain_text()
    assert "Net futures −42.0% (target +0.0%) · hedged 60%" in text
    w.store.close()


async def test_status_names_the_open_proposal_and_switches(world: World):
    plan = await world.say("/plan")
    await world.say("/pause")
    await world.say("/mute volatility_spike 2h")
    text = (await world.say("/status")).as_plain_text()
    assert f"Open proposal {plan.subject}, expires in 13 min: /plan" in text
    assert "Paused by Alice since 12:02 UTC" in text
    assert "volatility_spike muted until 14:02 UTC" in text


async def test_status_before_the_first_poll(tmp_path):
    w = make_world(tmp_path, doc=None)
    w.engine.view = None
    reply = await w.say("/status")
    assert reply.level == "error"
    assert "No market data yet" in reply.text


async def test_old_poll_is_flagged(world: World):
    world.clock.advance(hours=1)
    assert "old: check the feeds" in (await world.say("/status")).text


async def test_signals_table_with_fear_and_greed_attribution(world: World):
    reply = await world.say("/signals")
    text = reply.as_plain_text()
    assert reply.tables[0].headers == ("asset", "funding", "basis", "vol 7/30d")
    assert [r[0] for r in reply.tables[0].rows] == ["BTC", "ETH", "SOL", "XRP"]
    assert reply.tables[0].rows[0][1] == "+11.0%"  # 0.01% per 8 h annualized
    assert "Fear & Greed 20 (Extreme Fear)" in text
    assert FNG_CREDIT in text
    assert "fear_greed: fear" in text  # the regime per rule


async def test_signals_for_one_asset(world: World):
    text = (await world.say("/signals eth")).as_plain_text()
    assert text.startswith("Signals · ETH")
    assert "Funding +0.0100% per 8 h = +11.0% APR" in text
    assert "Premium (mark/index) +0.010%" in text
    assert "Basis n/a a year (no dated future)" in text
    assert "Volatility 7 d" in text and "30 d" in text
    assert "volatility_spike:ETH" in text and "volatility_spike:BTC" not in text


async def test_signals_unknown_asset_names_the_followed_ones(world: World):
    reply = await world.say("/signals DOGE")
    assert reply.level == "error"
    assert reply.text == "I don't follow 'DOGE'. I follow BTC, ETH, SOL, XRP."


async def test_plan_offers_a_fresh_proposal_with_buttons(world: World):
    reply = await world.say("/plan")
    pid = reply.subject
    assert pid and pid.startswith("P-")
    assert reply.title == f"Proposal {pid} · expires in 13 min"
    assert [(b.label, b.action) for b in reply.buttons] == [("Approve", f"approve:{pid}"),
                                                             ("Reject", f"reject:{pid}")]
    assert reply.extra["expires_in_s"] == "780"
    assert "Why:" in reply.text and "BTC is 50.0% of the portfolio" in reply.text
    assert "Costs ≈ 93.00 USDT" in reply.text
    assert reply.tables[0].headers == ("#", "side", "what", "amount", "USDT")
    assert reply.tables[0].rows[0] == ("1", "sell", "BTC", "0.433333", "26,000")
    stored = world.store.get_proposal(pid)
    assert stored is not None and stored.status == "proposed"


async def test_plan_shows_the_open_proposal_rather_than_a_new_one(world: World):
    first = await world.say("/plan")
    world.clock.advance(minutes=5)
    again = await world.say("/plan", VIEWER)
    assert again.subject == first.subject
    assert again.title.endswith("expires in 8 min")
    assert world.engine.fresh_calls == 1


async def test_plan_shows_the_expected_carry_of_a_basis_trade(tmp_path):
    basis = settings_for(
        assets={"BTC": {}},
        strategy={"preset": "premium-daa", "allocation": {"spot": 0.5, "hedged": 0.3, "stable": 0.2},
                  "rules": {"premium_regime": {"enabled": False}}},
    )
    doc = sc.snapshot({"BTC": sc.asset(50000, rate=0.0001)}, {"BTC": 1, "USDT": 50000})
    w = make_world(tmp_path, doc, settings=basis)
    reply = await w.say("/plan")
    # 0.01% every 8 h is 10.95% a year, earned by the spot leg hedged with a short perpetual.
    assert "Expected carry 11.0% a year clears the 8.0% hurdle" in reply.text
    assert "Net futures +0.0% → −30.0%" in reply.text
    legs = [(r[1], r[2], r[3]) for r in reply.tables[0].rows]
    assert legs == [("buy", "BTC", "0.6"), ("sell", "BTC perp", "0.6")]
    w.store.close()


async def test_plan_when_nothing_is_due(tmp_path):
    w = make_world(tmp_path, balanced_doc())
    reply = await w.say("/plan")
    assert reply.title == "No proposal"
    assert not reply.buttons
    assert w.store.recent_proposals(5) == []


async def test_history_lists_proposals_and_outcomes(world: World):
    first = (await world.say("/plan")).subject
    await world.say(f"/reject {first}")
    second = (await world.say("/plan")).subject
    reply = await world.say("/history 5")
    rows = {r[0]: r for r in reply.tables[0].rows}
    assert set(rows) == {first, second}
    assert rows[first][2] == "rejected" and rows[first][4] == "1001"
    assert rows[second][2] == "awaiting approval"
    assert (await world.say("/history lots")).text.startswith("'lots' is not a number")
    assert (await world.say("/history 500")).text == "Use a number from 1 to 30."


async def test_history_when_empty(world: World):
    assert (await world.say("/history")).text == "No proposals yet."


@pytest.mark.parametrize("kind", ["allocation", "funding", "basis"])
async def test_chart_returns_a_real_png(world: World, kind):
    if kind == "allocation":
        await world.say("/plan")  # the chart then shows the weights after the open proposal
    reply = await world.say(f"/chart {kind}")
    assert reply.level == "info", reply.text
    assert reply.image is not None
    assert reply.image.png.startswith(PNG_SIGNATURE)
    assert len(reply.image.png) > 5_000
    assert reply.image.caption


async def test_chart_saved_by_the_console(world: World, tmp_path):
    out = await world.console(tmp_path).run_line("/chart funding ETH")
    assert "image:" in out and "funding-eth.png" in out
    [png] = (tmp_path / "images").iterdir()
    assert png.read_bytes().startswith(PNG_SIGNATURE)


async def test_chart_argument_errors_show_usage(world: World):
    reply = await world.say("/chart pie")
    assert reply.level == "error"
    assert "not a chart; pick one of: allocation, funding, basis" in reply.text
    missing = await world.say("/chart")
    assert "Usage: /chart allocation|funding|basis [ASSET]" in missing.text


async def test_settings_redacts_secrets(world: World, monkeypatch):
    token = "123456789:AAFakeTelegramTokenValue_abcdefghij"
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", token)
    monkeypatch.setenv("BINANCE_SECRET", "binance-secret-value-xyz")
    for command in ("/settings", "/settings full"):
        text = (await world.say(command)).as_plain_text()
        assert token not in text and "AAFakeTelegram" not in text
        assert "binance-secret-value-xyz" not in text
        assert "TELEGRAM_BOT_TOKEN (set)" in text
    full = (await world.say("/settings full")).text
    assert "strategy.rules.fear_greed.below = 25" in full
    assert "BINANCE_SECRET (set)" in full
    assert os.environ["TELEGRAM_BOT_TOKEN"] == token


async def test_start_subscribes_the_chat(world: World):
    reply = await world.say("/start")
    assert "This chat now receives alerts." in reply.text
    assert world.store.subscribers("telegram") == ["1001"]
    assert "already receives alerts" in (await world.say("/start")).text


async def test_help_shows_what_the_role_allows(world: World):
    trader = (await world.say("/help")).text
    viewer = (await world.say("/help", VIEWER)).text
    assert "/approve ID" in trader and "/approve ID" not in viewer
    assert "more need the trader role" in viewer


def test_every_command_has_usage_help_and_a_role():
    names = [c.spec.name for c in REGISTRY]
    assert len(names) == len(set(names))
    for c in REGISTRY:
        assert c.spec.usage.startswith("/" + c.spec.name)
        assert 5 < len(c.spec.help) <= 100  # Discord's description limit
        assert c.spec.role in ("viewer", "trader")
    assert {c.spec.name for c in REGISTRY if c.spec.role == "trader"} == {
        "approve", "reject", "pause", "resume", "mute"}


async def test_unknown_and_malformed_commands_get_a_friendly_line(world: World):
    assert (await world.say("/frobnicate")).text.startswith("I don't know /frobnicate.")
    assert (await world.say("hello there")).text.startswith("I answer commands")
    assert "too long" in (await world.say("/status " + "x" * 5000)).text
    assert "cannot read" in (await world.say("/status \x00\x01")).text
    assert (await world.say("/<b>bold</b>")).text.startswith("That is not a command I know.")
    assert (await world.say("/status@PremiaTestBot")).title.startswith("Portfolio")


async def test_a_crashing_handler_is_logged_and_apologized(world: World, caplog):
    async def boom(req):
        raise RuntimeError("secret internals")

    registry = (*REGISTRY, Command(CommandSpec("boom", "/boom", "crashes on purpose", "viewer"), boom))
    dispatcher = CommandDispatcher(world.dispatcher.services, registry)
    reply = await dispatcher.handle_text(TRADER, "/boom")
    assert reply == Reply(text=APOLOGY, level="error")
    assert APOLOGY.startswith("Sorry, something went wrong on my side.")
    assert "secret internals" not in reply.as_plain_text()
    assert "command /boom by telegram:1001 failed" in caplog.text
    assert "RuntimeError: secret internals" in caplog.text  # the traceback is in the log


async def test_stranger_gets_no_data(world: World):
    reply = await world.say("/status", STRANGER)
    assert reply.level == "error"
    assert "allowlist" in reply.text and "6666" in reply.text
    assert "Portfolio" not in reply.as_plain_text()


async def test_backtest_replays_shared_history(world: World, shared_data):
    world.dispatcher.services.history_dir = shared_data
    reply = await world.say("/backtest balanced-aggression 2023-01-01 2023-06-30")
    assert reply.level == "info", reply.text
    assert reply.title == "Backtest balanced-aggression 2023-01-01 → 2023-06-30"
    assert reply.tables[0].headers == ("run", "final", "CAGR", "max DD", "Sharpe")
    assert [r[0] for r in reply.tables[0].rows] == ["strategy", "buy-and-hold", "monthly", "bands-only"]
    assert reply.image is not None and reply.image.png.startswith(PNG_SIGNATURE)
    assert "CSV history" in reply.text


async def test_backtest_argument_errors(world: World):
    assert "not a preset; pick one of: accumulation" in (await world.say("/backtest yolo")).text
    assert "is not a date" in (await world.say("/backtest defensive 2023-13-01")).text
    assert "FROM must be before TO." in (await world.say("/backtest defensive 2023-05-01 2023-01-01")).text
