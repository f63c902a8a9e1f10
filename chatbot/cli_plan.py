"""`premia plan --snapshot FILE`: the what-if view of one market-and-portfolio snapshot."""

from __future__ import annotations

import argparse
import json
from decimal import Decimal
from typing import Any

from core.config import Settings, load_settings, resolve_strategy, settings_from_dict
from core.errors import ConfigError, SnapshotError
from core.evaluate import evaluate
from core.models import Proposal
from core.planner import plan
from core.snapshot_io import StrategyIn, load_snapshot


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--snapshot", required=True, help="snapshot JSON (config/snapshot.schema.json)")
    parser.add_argument("--config", help="TOML config file (default: $PREMIA_CONFIG or the example)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def check_targets(override: StrategyIn | None, assets: set[str], quote: str) -> None:
    """Every strategy.targets name must be an asset the snapshot prices (or the quote itself).

    A name it does not price would otherwise count as a target with no market: the plan would
    sell everything else towards an asset it can never buy.
    """
    if not (override and override.targets):
        return
    unknown = sorted(set(override.targets) - assets - {quote})
    if unknown:
        names = ", ".join(unknown)
        raise SnapshotError(
            f"strategy.targets names {names}, which the snapshot has no market for (it has "
            f"{', '.join(sorted(assets)) or 'no assets'}); add assets.{unknown[0]} with a spot price "
            f"to the snapshot, or take {names} out of strategy.targets"
        )


def settings_for(settings: Settings, override: StrategyIn | None, assets: set[str]) -> Settings:
    """Apply the snapshot's strategy block and make sure every snapshot asset is configured."""
    raw = settings.model_dump(mode="python")
    raw["strategy"] = {"preset": settings.strategy.name}
    if override and override.preset:
        raw["strategy"] = {"preset": override.preset}
    if override and override.band_pp is not None:
        raw["strategy"]["band_pp"] = override.band_pp
    missing = assets - set(raw["assets"])
    if missing and not (override and override.targets):
        raise ConfigError(
            "the snapshot has assets the config does not know: " + ", ".join(sorted(missing))
            + "; add [assets.X] tables or give strategy.targets in the snapshot"
        )
    for asset in missing:
        raw["assets"][asset] = {"exchange": next(iter(raw["exchanges"]))}
    # The snapshot is the universe of a what-if: configured assets it does not carry are left out.
    raw["assets"] = {a: v for a, v in raw["assets"].items() if a in assets}
    resolve_strategy(raw["strategy"])  # names a bad preset before anything else
    return settings_from_dict(raw, source="config + snapshot strategy")


def _num(x: Decimal | None) -> str | None:
    return None if x is None else str(x)


def proposal_json(p: Proposal) -> dict[str, Any]:
    return {
        "id": p.id, "strategy": p.strategy, "as_of": p.created_at.isoformat(),
        "value": str(p.value),
        "triggers": [{"rule": t.rule, "asset": t.asset, "explanation": t.explanation,
                      "values": dict(t.values), "from": t.state_from, "to": t.state_to}
                     for t in p.triggers],
        "orders": [{"market": o.market, "symbol": o.symbol, "side": o.side, "amount": str(o.amount),
                    "notional": str(o.notional.quantize(Decimal("0.01"))),
                    "limit_price": str(o.limit_price), "reason": o.reason,
                    "est_fee": str(o.est_fee.quantize(Decimal("0.0001")))} for o in p.orders],
        "weights": {"before": {a: str(w.quantize(Decimal("0.000001"))) for a, w in p.weights_before.items()},
                    "after": {a: str(w.quantize(Decimal("0.000001"))) for a, w in p.weights_after.items()}},
        "net_futures_exposure": {"before": str(p.net_futures_exposure_before.quantize(Decimal("0.000001"))),
                                 "after": str(p.net_futures_exposure_after.quantize(Decimal("0.000001")))},
        "costs": {"fees": str(p.est_fees.quantize(Decimal("0.01"))),
                  "slippage": str(p.est_slippage.quantize(Decimal("0.01")))},
        "expected_carry_apr": _num(p.expected_carry_apr), "hurdle_apr": _num(p.hurdle_apr),
        "warnings": list(p.warnings),
    }


def run(args: argparse.Namespace) -> int:
    base = load_settings(args.config)
    snapshot, portfolio, override = load_snapshot(args.snapshot, quote=base.quote)
    check_targets(override, set(snapshot.assets), snapshot.quote)
    settings = settings_for(base, override, set(snapshot.assets))
    explicit = override.targets if override and override.targets else None
    ev = evaluate(snapshot, portfolio, settings, {}, explicit_targets=explicit)
    proposal = plan(ev, snapshot, portfolio, settings, strategy=settings.strategy.name)
    if args.json:
        print(json.dumps(proposal_json(proposal), indent=2, ensure_ascii=False))
    else:
        from chatbot.plan_table import print_proposal

        print_proposal(proposal, settings)
    return 0
