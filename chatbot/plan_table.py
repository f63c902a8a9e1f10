"""A readable terminal rendering of a proposal (rich tables)."""

from __future__ import annotations

import sys
from decimal import Decimal

from rich.console import Console
from rich.table import Table

from core.config import Settings
from core.models import Proposal


def _pct(x: Decimal) -> str:
    return f"{x * 100:.1f}%"


def print_proposal(p: Proposal, settings: Settings, console: Console | None = None) -> None:
    console = console or Console(soft_wrap=True, width=None if sys.stdout.isatty() else 120)
    q = settings.quote
    console.print(f"[bold]Premia what-if[/bold] — strategy {p.strategy}, value {p.value:,.2f} {q}, "
                  f"as of {p.created_at:%Y-%m-%d %H:%M} UTC")
    if not p.orders and any("stale" in w for w in p.warnings):
        console.print("Data is stale: nothing is proposed until fresh quotes arrive.")
    elif not p.triggers:
        console.print("No rule fired and every asset is inside its band: nothing to do.")
    for t in p.triggers:
        console.print(f"• [bold]{t.rule}[/bold]{' ' + t.asset if t.asset else ''}: {t.explanation}")
    if p.orders:
        table = Table(title=f"Proposal {p.id}")
        for col in ("#", "market", "symbol", "side", "amount", f"notional {q}", "limit"):
            table.add_column(col, no_wrap=True)
        for o in p.orders:
            table.add_row(str(o.leg + 1), o.market, o.symbol, o.side, f"{o.amount.normalize():f}",
                          f"{o.notional:,.2f}", f"{o.limit_price.normalize():f}")
        console.print(table)
        for o in p.orders:
            console.print(f"  {o.leg + 1}. {o.reason}")
        console.print(f"Estimated fees {p.est_fees:,.2f} {q}, slippage {p.est_slippage:,.2f} {q}")
    weights = Table(title="Weights")
    for col in ("asset", "before", "after"):
        weights.add_column(col)
    for asset in sorted(set(p.weights_before) | set(p.weights_after)):
        weights.add_row(asset, _pct(p.weights_before.get(asset, Decimal(0))),
                        _pct(p.weights_after.get(asset, Decimal(0))))
    weights.add_row("net futures", _pct(p.net_futures_exposure_before), _pct(p.net_futures_exposure_after))
    console.print(weights)
    if p.expected_carry_apr is not None:
        verdict = "beats" if p.hurdle_apr is None or p.expected_carry_apr >= p.hurdle_apr else "misses"
        console.print(f"Expected basis carry {_pct(p.expected_carry_apr)} a year {verdict} the "
                      f"{_pct(p.hurdle_apr or Decimal(0))} hurdle")
    for w in p.warnings:
        console.print(f"[yellow]warning:[/yellow] {w}")
