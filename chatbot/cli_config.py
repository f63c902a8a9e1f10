"""`premia check-config`: validate a config file and print the effective settings, secrets masked
as /settings masks them (`core.config.redacted`)."""

from __future__ import annotations

import argparse
import json

from core.config import load_settings, redacted


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="TOML config file (default: $PREMIA_CONFIG or the example)")
    parser.add_argument("--json", action="store_true", help="print the settings as JSON")


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    data = redacted(settings)
    if args.json:
        print(json.dumps(data, indent=2, default=str))
        return 0
    print(f"config OK — strategy {settings.strategy.name} ({settings.strategy.title}), "
          f"mode {settings.mode}, {len(settings.assets)} assets, store {settings.db_path}")
    _print_tree(data)
    return 0


def _print_tree(data: object, indent: int = 0) -> None:
    pad = "  " * indent
    if isinstance(data, dict):
        for key, value in data.items():
            if isinstance(value, dict) and value:
                print(f"{pad}{key}:")
                _print_tree(value, indent + 1)
            else:
                print(f"{pad}{key}: {json.dumps(value, default=str, ensure_ascii=False)}")
