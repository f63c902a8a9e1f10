"""Seed 000: move between the Accumulation, Yield Optimization and Defensive allocations."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal

from core.rules.base import (
    Effect,
    Outcome,
    Resting,
    RuleContext,
    RuleState,
    carry_state,
    pct,
    stay,
    transition,
)
from core.signals import basis_apr, funding_apr, nearest_future, vol_ratio
from core.strategy_config import Allocation, FundingRegimeRule, HurdleRule, RecoveryRule
from core.targets import Targets


class _Replacements:
    """Effects replacing the targets with an allocation's, one per resolved targets object.

    A regime holds its allocation for months: the same effect object every day lets the
    evaluator reuse what was built on top of it.
    """

    def __init__(self) -> None:
        self._made: dict[int, tuple[Targets, Effect]] = {}

    def __call__(self, ctx: RuleContext, allocation: Allocation | None) -> Effect | None:
        if allocation is None or ctx.resolve is None:
            return None
        resolved: Targets = ctx.resolve(allocation)
        hit = self._made.get(id(resolved))  # the entry keeps `resolved` alive: its id stays its own
        if hit is None:
            if len(self._made) > 16:
                self._made.clear()
            hit = self._made[id(resolved)] = (resolved, lambda _targets: resolved)
        return hit[1]


def expected_carry(ctx: RuleContext, asset: str) -> Decimal | None:
    """Annual carry of a basis trade on `asset`: the better of the dated basis and perp funding."""
    market = ctx.snapshot.assets.get(asset)
    if market is None:
        return None
    candidates: list[Decimal] = []
    if market.perp is not None and asset not in ctx.freshness.stale_perp:
        candidates.append(funding_apr(market.perp.funding_rate, market.perp.funding_interval_hours))
    if market.spot is not None and asset not in ctx.freshness.stale_futures:
        future = nearest_future(market.futures, ctx.now)
        if future is not None:
            apr = basis_apr(future.price, market.spot.price, future.expiry, ctx.now)
            if apr is not None:
                candidates.append(apr)
    return max(candidates, default=None)


class FundingRegime:
    """Spot ⇄ hedged yield: enter above `enter_apr` held `hold_days`, leave below `exit_apr`."""

    name = "funding_regime"

    def __init__(self, cfg: FundingRegimeRule, hurdle: HurdleRule) -> None:
        self.cfg, self.hurdle = cfg, hurdle
        self.replace_with = _Replacements()
        self.resting = Resting(self.name)

    def evaluate(self, ctx: RuleContext, states: Mapping[str, RuleState]) -> list[Outcome]:
        cfg, key, asset = self.cfg, self.name, self.cfg.reference_asset
        old = carry_state(key, states, cfg.start, ctx.now)
        effect = self.replace_with(ctx, cfg.high_allocation if old.state == "high" else cfg.low_allocation)
        market = ctx.snapshot.assets.get(asset)
        if market is None or market.perp is None or asset in ctx.freshness.stale_perp:
            return [stay(key, old, effect, (f"{key}: no fresh funding for {asset}; regime kept",))]
        if old.state == "low":
            window = ctx.held_window(market.perp, cfg.hold_days, "apr")
            if not window.holds(cfg.enter_apr, "above"):
                return [self.resting.stay(key, old, effect)]
            verdict = window.held(cfg.enter_apr, "above")
            carry = expected_carry(ctx, asset)
            if carry is None or carry < self.hurdle.min_apr:
                return [stay(key, old, effect, (
                    f"{key}: funding held above {pct(cfg.enter_apr)} but the basis trade would earn "
                    f"{pct(carry)} a year, below the {pct(self.hurdle.min_apr)} hurdle; staying in spot",
                ))]
            return [transition(
                key, old, "high", ctx.now, rule=key, asset=asset,
                explanation=(
                    f"{asset} funding APR stayed above {pct(cfg.enter_apr)} for {cfg.hold_days} days "
                    f"({verdict.describe()}); expected carry {pct(carry)} beats the "
                    f"{pct(self.hurdle.min_apr)} hurdle: shift core spot into hedged yield"
                ),
                values={"funding_apr_mean": pct(verdict.mean), "enter_apr": pct(cfg.enter_apr),
                        "window_days": str(cfg.hold_days), "carry_apr": pct(carry)},
                effect=self.replace_with(ctx, cfg.high_allocation),
                scopes=frozenset({"spot", "futures"}),
            )]
        window = ctx.held_window(market.perp, cfg.exit_hold_days, "apr")
        if not window.holds(cfg.exit_apr, "below"):
            return [self.resting.stay(key, old, effect)]
        verdict = window.held(cfg.exit_apr, "below")
        return [transition(
            key, old, "low", ctx.now, rule=key, asset=asset,
            explanation=(
                f"{asset} funding APR fell below {pct(cfg.exit_apr)} over {cfg.exit_hold_days} days "
                f"({verdict.describe()}): cooling sentiment, move hedged yield back to spot and "
                "liquidity"
            ),
            values={"funding_apr_mean": pct(verdict.mean), "exit_apr": pct(cfg.exit_apr),
                    "window_days": str(cfg.exit_hold_days)},
            effect=self.replace_with(ctx, cfg.low_allocation),
            scopes=frozenset({"spot", "futures"}),
        )]


class Recovery:
    """Defensive → spot when prices bottom out and funding turns strongly positive again."""

    name = "recovery"

    def __init__(self, cfg: RecoveryRule) -> None:
        self.cfg = cfg
        self.replace_with = _Replacements()
        self.resting = Resting(self.name)

    def evaluate(self, ctx: RuleContext, states: Mapping[str, RuleState]) -> list[Outcome]:
        cfg, key, asset = self.cfg, self.name, self.cfg.reference_asset
        carried = states.get(key)
        old = carried or RuleState("defensive", ctx.now)  # carry_state
        if old.state == "recovered":
            return [self.resting.stay(key, old, self.replace_with(ctx, cfg.recovered_allocation))]
        rest = [] if old is carried else [self.resting.stay(key, old, None)]  # defensive, no effect
        market = ctx.snapshot.assets.get(asset)
        if market is None or market.perp is None or asset in ctx.freshness.stale_perp:
            return rest
        since = ctx.now.date() - timedelta(days=cfg.low_window_days)
        window = [c for c in market.closes if c.day >= since]
        if len(window) < 2 or market.spot is None:
            return rest
        low = min(c.price for c in window)
        bounce = market.spot.price / low - 1
        ratio = vol_ratio(market.closes)
        bottoming = bounce >= cfg.bounce_from_low and ratio is not None and ratio < 1
        window = ctx.held_window(market.perp, cfg.hold_days, "apr")
        if not (bottoming and window.holds(cfg.funding_apr_above, "above")):
            return rest
        verdict = window.held(cfg.funding_apr_above, "above")
        return [transition(
            key, old, "recovered", ctx.now, rule=key, asset=asset,
            explanation=(
                f"{asset} is {pct(bounce)} above its {cfg.low_window_days}-day low with 7-day "
                f"volatility at {ratio:.2f}× the 30-day baseline, and funding stayed above "
                f"{pct(cfg.funding_apr_above)} for {cfg.hold_days} days ({verdict.describe()}): "
                "close the defensive futures and rebuild core spot"
            ),
            values={"bounce": pct(bounce), "vol_ratio": f"{ratio:.2f}",
                    "funding_apr_mean": pct(verdict.mean)},
            effect=self.replace_with(ctx, cfg.recovered_allocation),
            scopes=frozenset({"spot", "futures"}),
        )]
