"""Seed 003: a 7-day volatility spike against its baseline reduces that asset."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from core.models import ZERO
from core.rules.base import Outcome, Resting, RuleContext, RuleState, Scope, pct, transition
from core.signals import vol_ratios
from core.strategy_config import VolatilitySpikeRule
from core.targets import Targets

BOTH: frozenset[Scope] = frozenset({"spot", "futures"})


class VolatilitySpike:
    name = "volatility_spike"

    def __init__(self, cfg: VolatilitySpikeRule) -> None:
        self.cfg = cfg
        self.resting = Resting(self.name, self.effect)

    def effect(self, asset: str):
        keep = 1 - self.cfg.reduce_by

        def reduce(t: Targets) -> Targets:
            t = t.with_spot(asset, t.spot.get(asset, ZERO) * keep)
            long = t.futures.get(asset, ZERO)
            return t.with_futures(asset, long * keep) if long > 0 else t
        return reduce

    def values(self, ratio: Decimal) -> dict[str, str]:
        """The numbers a trigger shows (only built when the state changes)."""
        cfg = self.cfg
        return {"vol_ratio": f"{ratio:.2f}", "spike_ratio": f"{cfg.ratio}",
                "reset_ratio": f"{cfg.reset_ratio}", "reduce_by": pct(cfg.reduce_by, 0)}

    def evaluate(self, ctx: RuleContext, states: Mapping[str, RuleState]) -> list[Outcome]:
        cfg, resting, now, outcomes = self.cfg, self.resting, ctx.now, []
        ratios = vol_ratios(ctx.snapshot, cfg.short_days, cfg.long_days)
        stale = ctx.freshness.closes_stale
        for asset, key in resting.slots(ctx.snapshot.assets):
            carried = states.get(key)
            old = carried or RuleState("normal", now)  # carry_state
            ratio = None if asset in stale else ratios[asset]
            if old.state == "spike":
                if ratio is not None and ratio < cfg.reset_ratio:
                    outcomes.append(transition(
                        key, old, "normal", now, rule=self.name, asset=asset,
                        explanation=(f"{asset} volatility subsided to {ratio:.2f}× its baseline "
                                     f"(< {cfg.reset_ratio}×): back to the target weight"),
                        values=self.values(ratio), effect=None, scopes=BOTH))
                else:
                    outcomes.append(resting.stay(key, old, resting.effect(asset)))  # the cut holds
            elif ratio is not None and old.state == "normal" and ratio >= cfg.ratio:
                outcomes.append(transition(
                    key, old, "spike", now, rule=self.name, asset=asset,
                    explanation=(f"{asset} {cfg.short_days}-day volatility is {ratio:.2f}× its "
                                 f"{cfg.long_days}-day baseline (≥ {cfg.ratio}×): risk per unit "
                                 f"held jumped, reduce {asset} by {pct(cfg.reduce_by, 0)}"),
                    values=self.values(ratio), effect=resting.effect(asset), scopes=BOTH))
            elif old is not carried:  # at rest without an effect: said only the first time
                outcomes.append(resting.stay(key, old, None))
        return outcomes
