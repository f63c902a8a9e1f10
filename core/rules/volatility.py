"""Seed 003: a 7-day volatility spike against its baseline reduces that asset."""

from __future__ import annotations

from collections.abc import Mapping

from core.config import VolatilitySpikeRule
from core.models import ZERO
from core.rules.base import Outcome, RuleContext, RuleState, carry_state, pct, stay, transition
from core.signals import vol_ratio
from core.targets import Targets


class VolatilitySpike:
    name = "volatility_spike"

    def __init__(self, cfg: VolatilitySpikeRule) -> None:
        self.cfg = cfg

    def effect(self, asset: str):
        keep = 1 - self.cfg.reduce_by

        def reduce(t: Targets) -> Targets:
            t = t.with_spot(asset, t.spot.get(asset, ZERO) * keep)
            long = t.futures.get(asset, ZERO)
            return t.with_futures(asset, long * keep) if long > 0 else t
        return reduce

    def evaluate(self, ctx: RuleContext, states: Mapping[str, RuleState]) -> list[Outcome]:
        cfg, outcomes = self.cfg, []
        for asset, market in sorted(ctx.snapshot.assets.items()):
            key = f"{self.name}:{asset}"
            old = carry_state(key, states, "normal", ctx.now)
            effect = self.effect(asset) if old.state == "spike" else None
            ratio = None if asset in ctx.freshness.closes_stale else vol_ratio(
                market.closes, cfg.short_days, cfg.long_days)
            if ratio is None:
                outcomes.append(stay(key, old, effect))
                continue
            values = {"vol_ratio": f"{ratio:.2f}", "spike_ratio": f"{cfg.ratio}",
                      "reset_ratio": f"{cfg.reset_ratio}", "reduce_by": pct(cfg.reduce_by, 0)}
            if old.state == "normal" and ratio >= cfg.ratio:
                outcomes.append(transition(
                    key, old, "spike", ctx.now, rule=self.name, asset=asset,
                    explanation=(f"{asset} {cfg.short_days}-day volatility is {ratio:.2f}× its "
                                 f"{cfg.long_days}-day baseline (≥ {cfg.ratio}×): risk per unit "
                                 f"held jumped, reduce {asset} by {pct(cfg.reduce_by, 0)}"),
                    values=values, effect=self.effect(asset), scopes=frozenset({"spot", "futures"})))
            elif old.state == "spike" and ratio < cfg.reset_ratio:
                outcomes.append(transition(
                    key, old, "normal", ctx.now, rule=self.name, asset=asset,
                    explanation=(f"{asset} volatility subsided to {ratio:.2f}× its baseline "
                                 f"(< {cfg.reset_ratio}×): back to the target weight"),
                    values=values, effect=None, scopes=frozenset({"spot", "futures"})))
            else:
                outcomes.append(stay(key, old, effect))
        return outcomes
