"""Seed 002: the annualized futures premium table, per asset, with hysteresis.

Seed 002 reads "the annualized premium for the nearest-month contract (or perpetual funding rate
annualized)". A dated future's basis is one price for the carry over the contract's whole life,
so its quote is compared with the table as it is. A perpetual's funding print is one 8-hour
payment, and one hot or cold print says little about the market's structure: judged print by
print, premium-daa changed regime 1,110 times on five assets over 2020–2026 and rebalanced on
962 of 2,324 days. So a perpetual's premium is judged on the settled prints of the last
`hold_days` (3 days: 9 prints at 8 h) by the strategy's persistence rule
(`[strategy.rules.persistence]`: by default the mean past the threshold and at least 80% of the
prints past it). Each edge of the table is crossed only when the premium has held past it; in
between (a mixed window) the regime stays where it is. Over the same history that is 117 regime
changes and 292 days with a rebalance; the basis trade and the de-risk hold about as long as
before (15% and 13% of asset-days), accumulation, which single deep prints used to start, less
(0.3% of asset-days, from 1.8%).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from core.models import ZERO, AssetMarket
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
from core.signals import Direction, basis_apr, funding_held_window, nearest_future
from core.strategy_config import HurdleRule, Persistence, PremiumRegimeRule
from core.targets import Targets

LABELS = {
    "accumulate": "deep backwardation: accumulate spot from stablecoins",
    "baseline": "neutral structure: keep the baseline allocation",
    "basis": "moderate contango: open the basis trade (buy spot, short futures)",
    "derisk": "extreme contango: de-risk spot into stablecoins",
}
# The default of `premium_regime.hold_days`: days of settled prints a perpetual's premium is
# judged on (9 prints at 8 h).
DEFAULT_HOLD_DAYS = 3

Past = Callable[[Decimal], bool]


def hold_days(cfg: PremiumRegimeRule) -> int:
    """The persistence window of the perpetual premium, in days."""
    return cfg.hold_days


def next_state(cfg: PremiumRegimeRule, state: str, above: Past, below: Past) -> str:
    """The premium table with its exits: basis and de-risk reverse only below `exit_below`.

    `above(x)` / `below(x)` say whether the premium is (held) above / below x.
    """
    if below(cfg.accumulate_below):
        return "accumulate"
    if state == "accumulate":
        return "baseline" if above(cfg.accumulate_exit_above) else "accumulate"
    if above(cfg.derisk_above):
        return "derisk"
    if state in ("basis", "derisk"):
        return "baseline" if below(cfg.exit_below) else state
    return "basis" if above(cfg.basis_above) else "baseline"


@dataclass(frozen=True, slots=True)
class Reading:
    """An asset's annualized premium: the level shown, where it came from, and the table's tests."""

    level: Decimal
    source: str
    above: Past
    below: Past


def premium_reading(market: AssetMarket, now: datetime, days: int, rule: Persistence) -> Reading | None:
    """The nearest dated future's basis, else the perpetual's funding held over `days`."""
    if market.spot is not None:
        future = nearest_future(market.futures, now)
        if future is not None:
            apr = basis_apr(future.price, market.spot.price, future.expiry, now)
            if apr is not None:
                return Reading(apr, f"basis of {future.symbol}", lambda x: apr > x, lambda x: apr < x)
    perp = market.perp
    if perp is None:
        return None
    window = funding_held_window(perp, now, days, "apr", rule)
    if window.mean is None:
        return None

    def held(direction: Direction) -> Past:
        return lambda x: window.holds(x, direction)
    prints = f"{len(window.values)} funding prints of {perp.symbol} over {days} days"
    return Reading(window.mean, f"mean of {prints}", held("above"), held("below"))


class PremiumRegime:
    name = "premium_regime"

    def __init__(self, cfg: PremiumRegimeRule, hurdle: HurdleRule) -> None:
        self.cfg, self.hurdle = cfg, hurdle

    def effect(self, state: str, asset: str, base: Targets, spot_total: Decimal) -> Effect | None:
        """What a regime does to the targets; `spot_total` is the base's spot weight (or 1)."""
        cfg = self.cfg
        if state not in ("accumulate", "basis", "derisk"):
            return None
        share = base.spot_weight(asset) / spot_total
        if state == "accumulate":
            return lambda t: t.with_spot(asset, t.spot.get(asset, ZERO) + cfg.accumulate_shift * share)
        if state == "basis":
            def to_basis(t: Targets) -> Targets:
                core = t.spot.get(asset, ZERO)
                moved = core * cfg.basis_share
                return t.with_spot(asset, core - moved).with_hedged(asset, t.hedged.get(asset, ZERO) + moved)
            return to_basis
        factor = cfg.derisk_spot_share / spot_total
        if cfg.derisk_mode == "sell":
            return lambda t: t.with_spot(asset, t.spot.get(asset, ZERO) * factor)
        return lambda t: t.with_futures(
            asset, t.futures.get(asset, ZERO) - t.spot_weight(asset) * (1 - factor)
        )

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
        base, days = ctx.base, hold_days(self.cfg)
        spot_total = sum((base.spot_weight(a) for a in base.assets), ZERO) or Decimal(1)
        for asset, market in sorted(ctx.snapshot.assets.items()):
            key = f"{self.name}:{asset}"
            old = carry_state(key, states, "baseline", ctx.now)
            effect = self.effect(old.state, asset, base, spot_total)
            stale = asset in ctx.freshness.stale_spot or (
                asset in ctx.freshness.stale_perp and asset in ctx.freshness.stale_futures
            )
            found = None if stale else premium_reading(market, ctx.now, days,
                                                       ctx.strategy.rules.persistence)
            if found is None:
                outcomes.append(stay(key, old, effect))
                continue
            new = next_state(self.cfg, old.state, found.above, found.below)
            premium = found.level
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
                    f"{asset} annualized premium {pct(premium)} ({found.source}) moved the regime "
                    f"from {old.state} to {new} — {LABELS[new]}"
                ),
                values={"premium_apr": pct(premium), "source": found.source,
                        "accumulate_below": pct(self.cfg.accumulate_below),
                        "basis_above": pct(self.cfg.basis_above),
                        "derisk_above": pct(self.cfg.derisk_above),
                        "exit_below": pct(self.cfg.exit_below)},
                effect=self.effect(new, asset, base, spot_total),
                scopes=self.scopes(old.state, new),
            ))
        return outcomes
