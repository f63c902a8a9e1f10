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

from core.models import ZERO, AssetMarket, FutureQuote, PerpQuote
from core.rules.base import Effect, Outcome, Resting, RuleContext, RuleState, Scope, pct, stay, transition
from core.signals import PrintWindow, basis_apr, funding_held_window, nearest_future
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
    """An asset's annualized premium: the level shown, where it came from, and the table's tests.

    A dated future's basis is compared as it is; a perpetual's premium is judged on its `window`
    of prints held over `days`.
    """

    level: Decimal
    future: FutureQuote | None = None
    perp: PerpQuote | None = None
    window: PrintWindow | None = None
    days: int = 0

    def above(self, x: Decimal) -> bool:
        return self.level > x if self.window is None else self.window.holds(x, "above")

    def below(self, x: Decimal) -> bool:
        return self.level < x if self.window is None else self.window.holds(x, "below")

    @property
    def source(self) -> str:
        """Where the level comes from (only a trigger shows it, so it is put into words then)."""
        if self.future is not None:
            return f"basis of {self.future.symbol}"
        count = len(self.window.values) if self.window is not None else 0
        symbol = self.perp.symbol if self.perp is not None else "?"
        return f"mean of {count} funding prints of {symbol} over {self.days} days"


def premium_reading(market: AssetMarket, now: datetime, days: int, rule: Persistence) -> Reading | None:
    """The nearest dated future's basis, else the perpetual's funding held over `days`."""
    if market.spot is not None:
        future = nearest_future(market.futures, now)
        if future is not None:
            apr = basis_apr(future.price, market.spot.price, future.expiry, now)
            if apr is not None:
                return Reading(apr, future=future)
    perp = market.perp
    if perp is None:
        return None
    window = funding_held_window(perp, now, days, "apr", rule)
    if window.mean is None:
        return None
    return Reading(window.mean, perp=perp, window=window, days=days)


class _Effects:
    """A regime rule's effects for one base, made once per regime and asset (they are pure)."""

    def __init__(self, rule: PremiumRegime, base: Targets) -> None:
        self.rule, self.base = rule, base
        self.spot_total = sum((base.spot_weight(a) for a in base.assets), ZERO) or Decimal(1)
        self._made: dict[tuple[str, str], Effect | None] = {}

    def get(self, state: str, asset: str) -> Effect | None:
        key = (state, asset)
        if key not in self._made:
            self._made[key] = self.rule.effect(state, asset, self.base, self.spot_total)
        return self._made[key]


class PremiumRegime:
    name = "premium_regime"

    def __init__(self, cfg: PremiumRegimeRule, hurdle: HurdleRule) -> None:
        self.cfg, self.hurdle = cfg, hurdle
        self.resting = Resting(self.name)
        self._effects: _Effects | None = None

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
        cfg, resting, now, fresh = self.cfg, self.resting, ctx.now, ctx.freshness
        markets, days, persistence = ctx.snapshot.assets, hold_days(cfg), ctx.strategy.rules.persistence
        effects = self._effects
        if effects is None or effects.base is not ctx.base:
            effects = self._effects = _Effects(self, ctx.base)
        for asset, key in resting.slots(markets):
            carried = states.get(key)
            old = carried or RuleState("baseline", now)  # carry_state
            effect = effects.get(old.state, asset)
            stale = asset in fresh.stale_spot or (asset in fresh.stale_perp and asset in fresh.stale_futures)
            found = None if stale else premium_reading(markets[asset], now, days, persistence)
            if found is None:
                resting.rest(outcomes, key, old, old is carried, effect)
                continue
            new = next_state(cfg, old.state, found.above, found.below)
            premium = found.level
            if new == "basis" and old.state != "basis" and premium < self.hurdle.min_apr:
                outcomes.append(stay(key, old, effect, (
                    f"{asset}: premium {pct(premium)} is in the basis band but below the "
                    f"{pct(self.hurdle.min_apr)} hurdle; no basis trade",
                )))
                continue
            if new == old.state:
                resting.rest(outcomes, key, old, old is carried, effect)
                continue
            outcomes.append(transition(
                key, old, new, now, rule=self.name, asset=asset,
                explanation=(
                    f"{asset} annualized premium {pct(premium)} ({found.source}) moved the regime "
                    f"from {old.state} to {new} — {LABELS[new]}"
                ),
                values={"premium_apr": pct(premium), "source": found.source,
                        "accumulate_below": pct(cfg.accumulate_below),
                        "basis_above": pct(cfg.basis_above),
                        "derisk_above": pct(cfg.derisk_above),
                        "exit_below": pct(cfg.exit_below)},
                effect=effects.get(new, asset),
                scopes=self.scopes(old.state, new),
            ))
        return outcomes
