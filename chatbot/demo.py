"""`premia demo`: a volatile stretch of market history replayed through the whole bot in a minute.

    premia demo [--config FILE] [--from DATE] [--to DATE] [--speed N] [--auto-approve]
                [--preset NAME] [--data DIR] [--initial AMOUNT]

No tokens and no network. History comes from the store when it holds some, else the CSVs of
history_dir or ../shared/data, else a simulated market (core/simulated_market.py documents the
model), and the demo says plainly which. Each replayed day is one cycle of the real engine
(core.engine.Engine over a ReplayFeed and the paper book) in a private in-memory store, on a
clock that follows the replay; its alerts come out of the store's outbox (deduplicated, with
the real cooldown) to this console, rendered as `premia chat` shows them; your answer is typed
as "/approve ID" or "/reject ID" through the real command layer, so an approval goes through
the Executor (market re-check, exactly-once start) and the PaperBroker. chatbot/demo_bot.py is
that wiring. A summary with the backtest of the same days and its baselines ends it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from chatbot.cli_backtest import _amount, _day, chosen_presets

if TYPE_CHECKING:
    from chatbot.demo_bot import Answer, DemoBot
    from core.config import Settings

DEFAULT_FROM = date(2021, 5, 1)  # the May 2021 crash, the autumn top, LUNA and FTX in 2022
DEFAULT_TO = date(2022, 12, 31)
WARMUP = timedelta(days=90)  # closes and funding before the first day, so rules can judge it
NO_TERMINAL = "no terminal to ask you"
INPUT_ENDED = "your input ended"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="TOML config file (default: $PREMIA_CONFIG or the example)")
    parser.add_argument("--from", dest="start", type=_day, default=DEFAULT_FROM,
                        help=f"first day (default {DEFAULT_FROM})")
    parser.add_argument("--to", dest="end", type=_day, default=DEFAULT_TO,
                        help=f"last day (default {DEFAULT_TO})")
    parser.add_argument("--speed", type=float, default=40.0,
                        help="market days replayed per second (default 40; 0 = as fast as possible)")
    parser.add_argument("--auto-approve", action="store_true",
                        help="approve every proposal an alert offers, on paper, without asking")
    parser.add_argument("--preset", help="strategy preset (default: the config's)")
    parser.add_argument("--data", type=Path,
                        help="folder with history CSVs instead of the store or shared data")
    parser.add_argument("--initial", type=_amount, default=Decimal(100_000),
                        help="starting paper value in the quote currency (default 100000)")


# ── your answers ─────────────────────────────────────────────────────────────────────────────


async def auto_approve(pid: str, _bot: DemoBot) -> str:
    return f"/approve {pid}"


def no_terminal(out: TextIO, why: str = NO_TERMINAL) -> Answer:
    """Nobody to ask (CI, a pipe, input closed): reject, and say once why."""
    told = False

    async def reject(pid: str, _bot: DemoBot) -> str:
        nonlocal told
        if not told:
            out.write(f"({why}, so each proposal is rejected and nothing trades; run with "
                      "--auto-approve to approve them on paper)\n")
            told = True
        return f"/reject {pid}"
    return reject


async def ask(pid: str, bot: DemoBot) -> str:
    """y approves, Enter or n rejects, a /command (e.g. /status) is served and the question asked again."""
    while True:
        try:
            answer = (await asyncio.to_thread(input, f"Approve {pid}? [y/N or a /command] ")).strip()
        except EOFError:  # input closed: no more questions
            bot.out.write("\n")
            bot.answer = no_terminal(bot.out, INPUT_ENDED)
            return await bot.answer(pid, bot)
        verb, _, rest = answer.partition(" ")
        if verb in ("/approve", "/reject") and rest.strip().upper() == pid:
            return f"{verb} {pid}"  # typed in full: the same answer
        if answer.startswith("/"):
            await bot.run_command(answer)
            continue
        return f"/approve {pid}" if answer.lower() in ("y", "yes") else f"/reject {pid}"


def _answer(auto: bool, out: TextIO) -> Answer:
    if auto:
        return auto_approve
    return ask if sys.stdin.isatty() else no_terminal(out)


# ── the run ──────────────────────────────────────────────────────────────────────────────────


def demo_settings(args: argparse.Namespace) -> Settings:
    """The config (or a preset), always on paper, with the console allowed to approve."""
    from core.backtest import preset_settings
    from core.config import load_settings

    settings = load_settings(args.config)
    if args.preset:
        settings = preset_settings(settings, chosen_presets(args.preset)[0])
    chat = settings.chat.model_copy(update={"console_role": "trader"})
    return settings.model_copy(update={"mode": "paper", "chat": chat})


def play(args: argparse.Namespace, out: TextIO, answer: Answer | None = None) -> DemoBot:
    """Announce, replay every day through the bot, and print the summary; returns the bot."""
    from chatbot.demo_bot import DemoBot
    from core.backtest import run_backtest, trading_days
    from core.backtest_data import find_history
    from core.errors import ConfigError
    from core.market_feed import ReplayFeed

    if args.end < args.start:
        raise ConfigError(f"--to {args.end} is before --from {args.start}")
    settings = demo_settings(args)
    assets = [a for a in settings.assets if a != settings.quote]
    history = find_history(settings, assets, args.start - WARMUP, args.end, args.data,
                           allow_simulated=True)
    feed = ReplayFeed(history.frame, settings, perp_closes=history.perp_closes, start=args.start,
                      end=args.end)
    days, notes = trading_days(feed.replay, args.start, args.end)  # two days at least
    bot = DemoBot(settings, feed, out, initial=args.initial,
                  answer=answer or _answer(args.auto_approve, out), speed=args.speed)
    _announce(out, settings, history, days, notes, args.initial)
    asyncio.run(bot.run())
    result = run_backtest(history.frame, settings, settings.strategy.name, days[0], days[-1],
                          initial_value=args.initial, perp_closes=history.perp_closes)
    _summary(out, bot, result)
    return bot


def run(args: argparse.Namespace) -> int:
    play(args, sys.stdout)
    return 0


def _announce(out: TextIO, settings: Settings, history, days: tuple[date, ...], notes: list[str],
              initial: Decimal) -> None:
    out.write(f"Premia demo: {settings.strategy.name} ({settings.strategy.title}) on paper, "
              f"{days[0]} → {days[-1]} ({len(days)} days), start {initial:,.0f} {settings.quote}\n"
              f"Market data: {history.description}\n")
    if history.frame.source.startswith("simulated"):
        out.write("No history was found in the store, history_dir or shared data, and the demo never "
                  "uses the network: this run is on a SIMULATED market from a documented model, not "
                  "real prices. Import real history with `premia history import PATH` or pass --data DIR.\n")
    out.write(f"Assets: {', '.join(a for a in settings.assets if a != settings.quote)}. No tokens, no "
              "network. Each day is one engine cycle in a private in-memory store (your store is "
              "not written); alerts come out of its outbox to this console, and answers are typed "
              "as in `premia chat`.\n")
    for note in notes:
        out.write(f"note: {note}\n")
    out.write("\n")


def _summary(out: TextIO, bot: DemoBot, result) -> None:
    from chatbot.replies import Table
    from core.backtest import TABLE_HEADERS, table_rows

    t, q, ledger = bot.tally, bot.settings.quote, bot.sim.ledger
    value = bot.valuation(bot.feed.replay.snapshot(bot.days[-1])).value
    silent = len(t.proposals) - t.offered
    parts = [_n(len(bot.cycles), "engine cycle"), _n(t.alerts, "alert") + " delivered from the outbox",
             _n(len(t.proposals), "proposal") + f" ({t.offered} offered in an alert"
             + (f"; {silent} made while the same rules kept firing, so no new alert" if silent else "")
             + ")", f"{t.approved} approved", f"{t.declined} rejected"]
    if t.refused:
        parts.append(f"{t.refused} refused by the executor")
    parts.append(_n(t.fills, "leg") + " filled")
    money = f"Funding {ledger.funding:+,.2f} {q}"
    if ledger.margin_calls:
        money += ", " + _n(ledger.margin_calls, "margin call")
    out.write(f"\nDone: {', '.join(parts)}. {money}. Your paper book: {value:,.2f} {q} "
              f"({value / bot.initial - 1:+.1%}).\n\n")
    out.write(Table(TABLE_HEADERS, tuple(table_rows(result))).as_text() + "\n")
    out.write("The strategy row is the backtest of the same days, approving every proposal; "
              "buy-and-hold, monthly and bands-only are the same allocation without the rules.\n")


def _n(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")
