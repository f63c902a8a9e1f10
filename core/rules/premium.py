"""Seed 002: the annualized futures premium table, per asset, with hysteresis."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from core.config import HurdleRule, PremiumRegimeRule
from core.models import ZERO
from core.rules.base import (
    Effect,
    Outcome,
    RuleContext,
    RuleState,
    Scope,
    carry_state,
    pct,
    stay,
    transition,
)
from core.signals import annualized_premium
from core.targets import Targets

LABELS = {
    "accumulate": "deep backwardation: accumulate spot from stablecoins",
    "baseline": "neutral structure: keep the baseline allocation",
    "basis": "moderate contango: open the basis trade (buy spot, short futures)",
    "derisk": "extreme contango: de-risk spot into stablecoins",
}


def next_state(cfg: PremiumRegimeRule, state: str, premium: Decimal) -> str:
    """The premium table with its exits: basis and de-risk reverse only below `exit_below`."""
    if premium < cfg.accumulate_below:
        return "accumulate"
    if state == "accumulate":
        return "baseline" if premium > cfg.accumulate_exit_above else "accumulate"
    if premium > cfg.derisk_above:
        return "derisk"
    if state in ("basis", "derisk"):
        return "baseline" if premium < cfg.exit_below else state
    return "basis" if premium > cfg.basis_above else "baseline"


class PremiumRegime:
    name = "premium_regime"

    def __init__(self, cfg: PremiumRegimeRule, hurdle: HurdleRule) -> None:
        self.cfg, self.hurdle = cfg, hurdle

    def effect(self, state: str, asset: str, base: Targets) -> Effect | None:
        cfg = self.cfg
        spot_total = sum((base.spot_weight(a) for a in base.assets), ZERO) or Decimal(1)
        share = base.spot_weight(asset) / spot_total
        if state == "accumulate":
            return lambda t: t.with_spot(asset, t.spot.get(asset, ZERO) + cfg.accumulate_shift * share)
        if state == "basis":
            def to_basis(t: Targets) -> Targets:
                core = t.spot.get(asset, ZERO)
                moved = core * cfg.basis_share
                return t.with_spot(asset, core - moved).with_hedged(asset, t.hedged.get(asset, ZERO) + moved)
            return to_basis
        if state == "derisk":
            factor = cfg.derisk_spot_share / spot_total
            if cfg.derisk_mode == "sell":
                return lambda t: t.with_spot(asset, t.spot.get(asset, ZERO) * factor)
            return lambda t: t.with_futures(
                asset, t.futures.get(asset, ZERO) - t.spot_weight(asset) * (1 - factor)
            )
        return None

    def scopes(self, old: str, new: str) -> frozenset[Scope]:
        touched = {old, new}
        scopes: set[Scope] = set()
        if touched & {"accumulate"} or ("derisk" in touched and self.cfg.derisk_mode == "sell"):
            scopes.add("spot")
        if "basis" in touched or ("derisk" in touched and self.cfg.derisk_mode == "hedge"):
            scopes.add("futures")
        return frozenset(scopes or {"spot"})

    def evaluate(self, ctx: RuleContext, states: Mapping[str, RuleState]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for asset, market in sorted(ctx.snapshot.assets.items()):
            key = f"{self.name}:{asset}"
            old = carry_state(key, states, "baseline", ctx.now)
            effect = self.effect(old.state, asset, ctx.base)
            stale = asset in ctx.freshness.stale_spot or (
                asset in ctx.freshness.stale_perp and asset in ctx.freshness.stale_futures
            )
            found = None if stale else annualized_premium(market, ctx.now)
            if found is None:
                outcomes.append(stay(key, old, effect))
                continue
            premium, source = found
            new = next_state(self.cfg, old.state, premium)
            if new == "basis" and old.state != "basis" and premium < self.hurdle.min_apr:
                outcomes.append(stay(key, old, effect, (
                    f"{asset}: premium {pct(premium)} is in the basis band but below the "
                    f"{pct(self.hurdle.min_apr)} hurdle; no basis trade",
                )))
                continue
            if new == old.state:
                outcomes.append(stay(key, old, effect))
                continue
            outcomes.append(transition(
                key, old, new, ctx.now, rule=self.name, asset=asset,
                explanation=(
                    f"{asset} annualized premium {pct(premium)} ({source}) moved the regime from "
                    f"{old.state} to {new} — {LABELS[new]}"
                ),
                values={"premium_apr": pct(premium), "source": source,
                        "accumulate_below": pct(self.cfg.accumulate_below),
                        "basis_above": pct(self.cfg.basis_above),
                        "derisk_above": pct(self.cfg.derisk_above),
                        "exit_below": pct(self.cfg.exit_below)},
                effect=self.effect(new, asset, ctx.base),
                scopes=self.scopes(old.state, new),
            ))
        return outcomes
