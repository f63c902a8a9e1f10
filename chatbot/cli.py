"""The `premia` command line: one sub-command per job, each living in its own module.

Sub-command modules are imported only when chosen, so `premia check-config` does not pay for
ccxt, Telegram or matplotlib. Each module offers `add_arguments(parser)` and `run(args) -> int`.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from core.errors import PremiaError
from core.redact import scrub_logs

# name → (module, help). Order is the order shown by --help.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "run": ("chatbot.app", "run the bot: scheduler, engine and every enabled chat adapter"),
    "chat": ("chatbot.console", "talk to the bot on a local console prompt (no tokens needed)"),
    "check-config": ("chatbot.cli_config", "validate a config file and print effective settings"),
    "plan": ("chatbot.cli_plan", "what-if: evaluate a snapshot file and print triggers and plan"),
    "poll-once": ("chatbot.cli_poll", "run one engine cycle against the configured feeds"),
    "history": ("chatbot.cli_history", "fetch or import market history into the store"),
    "backtest": ("chatbot.cli_backtest", "replay history through the rules and paper broker"),
    "demo": ("chatbot.demo", "replay a volatile period through the whole bot in a minute"),
}
# Interactive commands keep the log out of the way: their replies already say what failed.
QUIET_LEVEL = {"chat": logging.ERROR, "demo": logging.WARNING, "plan": logging.WARNING,
               "backtest": logging.WARNING, "check-config": logging.WARNING}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("-v", "--verbose", action="store_true")
    known, _ = parser.parse_known_args(argv)
    command = next((a for a in argv if a in SUBCOMMANDS), None)
    logging.basicConfig(
        level=logging.DEBUG if known.verbose else QUIET_LEVEL.get(command or "", logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # httpx logs request URLs, and Telegram's carry the bot token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    scrub_logs()

    full = argparse.ArgumentParser(
        prog="premia", description="Premia: futures-aware crypto rebalancing, approved from chat."
    )
    full.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    subs = full.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in SUBCOMMANDS.items():
        sub = subs.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(_module=module)
        if name in argv:
            importlib.import_module(module).add_arguments(sub)
    args = full.parse_args(argv)
    if not args.command:
        full.print_help()
        return 2
    try:
        return int(importlib.import_module(args._module).run(args) or 0)
    except PremiaError as exc:
        print(f"premia {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # Output piped into `head` and closed early: not an error worth a traceback.
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
