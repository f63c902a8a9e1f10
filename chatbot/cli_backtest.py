"""`premia backtest`: replay history through a preset's rules and the paper fill model.

    premia backtest --preset NAME|all [--from DATE] [--to DATE] [--json] [--chart FILE]
                    [--config FILE] [--data DIR] [--initial AMOUNT] [--no-baselines]

Each preset is shown beside buy-and-hold, monthly rebalancing and its bands alone. History
comes from --data, else the store, else `history_dir`, else ../shared/data.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path

from core.config import Settings, load_presets, load_settings
from core.errors import ConfigError

ALL = "all"


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date; use YYYY-MM-DD") from None


def _amount(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"'{text}' is not an amount") from None
    if not value.is_finite() or value <= 0:
        raise argparse.ArgumentTypeError("the starting value must be a positive amount")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", required=True, help="a preset name, or 'all' for the seven")
    parser.add_argument("--from", dest="start", type=_day, help="first day, YYYY-MM-DD (default: data start)")
    parser.add_argument("--to", dest="end", type=_day, help="last day, YYYY-MM-DD (default: data end)")
    parser.add_argument("--json", action="store_true", help="machine-readable results on stdout")
    parser.add_argument("--chart", type=Path, help="write the equity and drawdown chart (PNG) here")
    parser.add_argument("--config", help="TOML config file (default: $PREMIA_CONFIG or the example)")
    parser.add_argument("--data", type=Path, help="folder with history CSVs (shared/data/derived format)")
    parser.add_argument("--initial", type=_amount, default=Decimal(100_000),
                        help="starting value in the quote currency (default 100000)")
    parser.add_argument("--no-baselines", action="store_true",
                        help="skip buy-and-hold, monthly and bands-only comparisons")


def chosen_presets(name: str) -> list[str]:
    """The presets asked for; a ConfigError naming the choices when the name is unknown."""
    presets = list(load_presets())
    if name == ALL:
        return presets
    if name not in presets:
        raise ConfigError(f"unknown preset '{name}'; pick one of: {', '.join(presets)} or all")
    return [name]


# History is loaded over this whole span, so a range outside the data is answered with the
# span the data really covers.
EARLIEST = date(2010, 1, 1)


def _check_range(args: argparse.Namespace) -> None:
    if args.start and args.end and args.end < args.start:
        raise ConfigError(f"--to {args.end} is before --from {args.start}")


def _check_chart(path: Path | None) -> None:
    """Refuse a --chart path that cannot be written before the run, not after it."""
    if path is None:
        return
    if path.is_dir():
        raise ConfigError(f"--chart {path} is a folder; give a file name, e.g. {path / 'equity.png'}")
    folder = path.parent
    if not folder.is_dir():
        raise ConfigError(f"--chart {path}: the folder {folder} does not exist; create it or pick another")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ConfigError(f"--chart {path}: cannot write there; check the permissions or pick another place")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from core.backtest_data import find_history
    from core.backtest_parallel import run_presets_parallel

    presets = chosen_presets(args.preset)
    settings: Settings = load_settings(args.config)
    _check_range(args)
    _check_chart(args.chart)
    err = Console(stderr=True)
    assets = list(settings.assets)
    history = find_history(settings, assets, EARLIEST, date.today(), args.data)
    err.print(f"Using {history.description} for {', '.join(assets)}")
    results = _with_progress(err, lambda progress: run_presets_parallel(
        history.frame, settings, presets, args.start, args.end, initial_value=args.initial,
        baselines=not args.no_baselines, progress=progress, perp_closes=history.perp_closes))
    if args.chart:
        _chart(results, args.chart)
        err.print(f"Chart written to {args.chart}")
    if args.json:
        from core.backtest import result_json

        print(json.dumps({"source": history.description,
                          "results": [result_json(r) for r in results]}, indent=2))
    else:
        _table(results, settings)
    return 0


def _with_progress(err, work):
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    columns = (TextColumn("backtest"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task("backtest", total=None)
        return work(lambda done, total: bar.update(task, completed=done, total=total))


def _table(results, settings: Settings) -> None:
    from rich.console import Console
    from rich.table import Table

    from core.backtest import TABLE_HEADERS, table_rows

    console = Console(soft_wrap=True)
    if not console.is_terminal:
        console = Console(soft_wrap=True, width=200)  # a pipe or file: do not squeeze the table
    first = results[0]
    table = Table(title=f"Backtest {first.start} → {first.end}, {len(first.strategy.equity)} days, "
                        f"start {first.strategy.initial_value:,.0f} {settings.quote}")
    last = len(TABLE_HEADERS) - 1
    for i, header in enumerate(TABLE_HEADERS):
        table.add_column(header, justify="left" if i in (0, 1, last) else "right", no_wrap=i != last)
    for r in results:
        for row in table_rows(r):
            table.add_row(*row)
        table.add_section()
    console.print(table)
    notes = {n for r in results for n in r.notes} | {
        f"{r.preset} {v}: {n}" for r in results for v, run in r.runs.items() for n in run.notes[:3]}
    for note in sorted(notes):
        console.print(f"note: {note}")
    console.print("CAGR and Sharpe use a 365-day year; max DD is the deepest fall from a peak; "
                  "turnover is traded notional over mean equity; funding is what perpetual legs "
                  "received (+) or paid (−).")


def _chart(results, path: Path) -> None:
    from chatbot.charts import equity_chart
    from core.backtest import backtest_reply_data

    if len(results) == 1:
        _, curves = backtest_reply_data(results[0])
        title = results[0].preset
    else:
        curves = {r.preset: [(d, float(v)) for d, v in r.strategy.equity] for r in results}
        title = "presets"
    first = results[0]
    image = equity_chart(curves, f"{title}, {first.start:%Y-%m} to {first.end:%Y-%m}")
    try:
        path.write_bytes(image)
    except OSError as exc:  # the folder went away or filled up during the run
        raise ConfigError(f"--chart {path} could not be written: {exc.strerror or exc}") from None


if __name__ == "__main__":  # pragma: no cover - `premia backtest` is the entry point
    from chatbot.cli import main

    sys.exit(main(["backtest", *sys.argv[1:]]))
