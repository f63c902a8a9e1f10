"""`premia poll-once [--config FILE] [--json]`: one engine cycle against the configured feeds.

It writes to the configured store like a scheduled poll (snapshot, signals, rule states,
proposal, outbox) and prints the snapshot summary, the triggers and the proposal. When no
market data arrives (no network, every exchange down) it says which feeds are dead and exits
with status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.config import Settings, load_settings
from core.engine import CycleResult, Engine

NO_DATA_EXIT = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=None,
                        help="config file (default: $PREMIA_CONFIG, else config/premia.example.toml)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def utc_now() -> datetime:
    return datetime.now(UTC)


async def poll_once(settings: Settings) -> tuple[CycleResult, dict[str, dict[str, Any]]]:
    """One cycle on the configured store; returns it with the feeds known down afterwards."""
    from core.market_feed import LiveFeed
    from core.portfolio_source import build_portfolio_source
    from core.scheduler import cycle_outcome
    from core.store import Store

    with Store.open(settings.db_path) as store:
        feed = LiveFeed(settings, store)
        portfolio = build_portfolio_source(settings, store, utc_now, clients=feed.clients)
        engine = Engine(settings, store, feed, portfolio, utc_now)
        started = utc_now()
        try:
            result = await engine.run_cycle()
        finally:
            await engine.close()
        outcome, detail = cycle_outcome(result, "poll-once")
        store.record_job_run("poll-once", started, utc_now(), outcome, detail[:500])
        return result, engine.alerts.feeds_down()


def result_json(result: CycleResult, down: dict[str, dict[str, Any]], settings: Settings) -> dict[str, Any]:
    from chatbot.cli_plan import proposal_json
    from core.engine import signal_rows

    out: dict[str, Any] = {
        "snapshot_id": result.snapshot_id,
        "as_of": result.snapshot.as_of.isoformat() if result.snapshot else None,
        "signals": {},
        "triggers": [],
        "proposal": proposal_json(result.proposal) if result.proposal else None,
        "warnings": list(result.evaluation.warnings) if result.evaluation else [],
        "alerts": list(result.alerts),
        "failures": list(result.failures),
        "dead_feeds": {name: h.get("detail", "") for name, h in sorted(down.items())},
        "skipped": result.skipped,
    }
    if result.snapshot is not None and result.evaluation is not None:
        for row in signal_rows(result.snapshot, result.evaluation, settings):
            out["signals"].setdefault(row["asset"] or "portfolio", {})[row["name"]] = row["value"]
        out["triggers"] = [{"rule": t.rule, "asset": t.asset, "explanation": t.explanation,
                            "values": dict(t.values), "from": t.state_from, "to": t.state_to}
                           for t in result.evaluation.triggers]
    return out


def print_result(result: CycleResult, settings: Settings) -> None:
    from rich.console import Console
    from rich.table import Table

    from core.feeds.fear_greed import FEAR_GREED_ATTRIBUTION
    from core.signals import basis_apr, funding_apr, nearest_future, perp_premium

    console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 120, highlight=False)
    snap, ev, q = result.snapshot, result.evaluation, settings.quote
    assert snap is not None
    console.print(f"[bold]Snapshot {result.snapshot_id}[/bold] as of {snap.as_of:%Y-%m-%d %H:%M:%S} UTC, "
                  f"{len(snap.assets)} asset(s)")
    table = Table()
    for col in ("asset", f"spot {q}", "funding", "APR", "premium", "basis APR", "quote time"):
        table.add_column(col, no_wrap=True)
    for asset, m in sorted(snap.assets.items()):
        p, fut = m.perp, nearest_future(m.futures, snap.as_of)
        basis = basis_apr(fut.price, m.spot.price, fut.expiry, snap.as_of) if fut and m.spot else None
        table.add_row(
            asset, f"{m.spot.price:,f}" if m.spot else "-",
            f"{p.funding_rate * 100:.4f}%/{p.funding_interval_hours.normalize():f}h" if p else "-",
            f"{funding_apr(p.funding_rate, p.funding_interval_hours) * 100:.2f}%" if p else "-",
            f"{perp_premium(p.mark, p.index) * 100:+.3f}%" if p and p.index else "-",
            f"{basis * 100:.2f}%" if basis is not None else "-",
            f"{m.spot.timestamp:%H:%M:%S}" if m.spot else "-")
    console.print(table)
    if snap.fear_greed is not None:
        fg = snap.fear_greed
        console.print(f"Fear & Greed {fg.value} ({fg.label}) — {FEAR_GREED_ATTRIBUTION}")
    if ev is not None:
        console.print(f"Portfolio {ev.valuation.value:,.2f} {q} ({settings.mode})")
        console.print("[bold]Triggers[/bold]" if ev.triggers
                      else "No rule fired; every weight is in its band.")
        for t in ev.triggers:
            change = f" [{t.state_from} → {t.state_to}]" if t.state_to else ""
            console.print(f"  • {t.explanation}{change}")
    p = result.proposal
    if p is not None:
        console.print(f"[bold]Proposal {p.id}[/bold], expires {p.expires_at:%H:%M} UTC")
        for o in p.orders:
            console.print(f"  {o.leg + 1}. {o.side} {o.amount.normalize():f} {o.symbol} @ "
                          f"{o.limit_price.normalize():f} (≈ {o.notional:,.2f} {q}) — {o.reason}")
        console.print(f"  Estimated fees {p.est_fees:,.2f} {q}, slippage {p.est_slippage:,.2f} {q}")
    elif result.skipped:
        console.print(f"No proposal: {result.skipped}")
    for w in (ev.warnings if ev else ()):
        console.print(f"[yellow]warning:[/yellow] {w}")
    for f in result.failures:
        console.print(f"[yellow]failed:[/yellow] {f}")
    if result.alerts:
        console.print(f"{len(result.alerts)} alert(s) queued in the outbox.")


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    result, down = asyncio.run(poll_once(settings))
    if args.json:
        from core.codec import json_dumps

        print(json.dumps(json.loads(json_dumps(result_json(result, down, settings))), indent=2,
                         ensure_ascii=False))
    elif result.snapshot is not None:
        print_result(result, settings)
    if result.snapshot is None:
        dead = [f"{name} ({h.get('detail') or 'no answer'})" for name, h in sorted(down.items())]
        print("premia poll-once: no market data. Dead feeds: " + ("; ".join(dead) or "all")
              + ". Check the network or the exchanges' status; nothing was proposed.", file=sys.stderr)
        return NO_DATA_EXIT
    return 0
