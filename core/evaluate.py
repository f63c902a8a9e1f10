"""One evaluation: freshness, rules with their states, effective targets and drift triggers."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from core.config import AssetConfig, Settings, Staleness
from core.memo import SameInputMemo
from core.models import ZERO, MarketSnapshot, Portfolio, Trigger
from core.portfolio import Valuation, drift_pp, value_portfolio
from core.rules import Freshness, Rule, RuleContext, RuleState, Scope, build_rules
from core.rules.base import Effect, pct
from core.strategy_config import Allocation, Strategy
from core.targets import Targets, resolve_targets, targets_from_weights

FUTURE_SKEW = timedelta(minutes=5)
# A replayed day's snapshot is evaluated by every backtest run: see core/memo.py. Its reading is
# keyed by the staleness limits' values, which presets share (comparing the models is slow).
_READINGS: SameInputMemo[SnapshotReading] = SameInputMemo(64)
_EVALUATORS: SameInputMemo[Evaluator] = SameInputMemo(64)


@dataclass(frozen=True, slots=True)
class Evaluation:
    triggers: tuple[Trigger, ...]
    base: Targets
    targets: Targets
    states: Mapping[str, RuleState]
    scopes: frozenset[Scope]
    warnings: tuple[str, ...]
    valuation: Valuation
    freshness: Freshness


def check_freshness(snapshot: MarketSnapshot, limits: Staleness) -> Freshness:
    """Mark every quote older than its limit (or from the future) relative to `as_of`."""
    now = snapshot.as_of

    def stale(ts: datetime, seconds: float) -> bool:
        return ts < now - timedelta(seconds=seconds) or ts > now + FUTURE_SKEW

    spot, perp, futures, closes = set(), set(), set(), set()
    for asset, m in snapshot.assets.items():
        if m.spot is None or stale(m.spot.timestamp, limits.spot_seconds):
            spot.add(asset)
        if m.perp is not None and stale(m.perp.timestamp, limits.perp_seconds):
            perp.add(asset)
        if any(stale(f.timestamp, limits.futures_seconds) for f in m.futures):
            futures.add(asset)
        if m.closes and (now.date() - m.closes[-1].day).days > limits.closes_days:
            closes.add(asset)
    fg = snapshot.fear_greed
    return Freshness(
        stale_spot=frozenset(spot),
        stale_perp=frozenset(perp),
        stale_futures=frozenset(futures),
        fear_greed_stale=fg is not None and stale(fg.timestamp, limits.fear_greed_hours * 3600),
        closes_stale=frozenset(closes),
    )


@dataclass(frozen=True, slots=True)
class SnapshotReading:
    """What every evaluation of a snapshot with the same staleness limits reads alike."""

    freshness: Freshness
    warnings: tuple[str, ...]
    perps: frozenset[str]  # assets with a perpetual

    @classmethod
    def of(cls, snapshot: MarketSnapshot, limits: Staleness) -> SnapshotReading:
        fresh = check_freshness(snapshot, limits)
        return cls(fresh, tuple(freshness_warnings(fresh)),
                   frozenset(a for a, m in snapshot.assets.items() if m.perp is not None))


def freshness_warnings(fresh: Freshness) -> list[str]:
    out = []
    if fresh.stale_spot:
        out.append("stale or missing spot prices for " + ", ".join(sorted(fresh.stale_spot))
                   + ": no orders until fresh data arrives")
    if fresh.stale_perp:
        out.append("stale perpetual data for " + ", ".join(sorted(fresh.stale_perp)))
    if fresh.stale_futures:
        out.append("stale dated-future quotes for " + ", ".join(sorted(fresh.stale_futures)))
    if fresh.fear_greed_stale:
        out.append("the Fear & Greed index is stale")
    if fresh.closes_stale:
        out.append("daily closes are out of date for " + ", ".join(sorted(fresh.closes_stale)))
    return out


def drift_triggers(valuation: Valuation, targets: Targets, band_pp, assets: Iterable[str],
                   fresh: Freshness) -> tuple[list[Trigger], set[Scope]]:
    """Drift-band triggers for `assets` (in name order), spot and futures exposure."""
    return _drift(valuation, drift_rows(targets, sorted(assets)), band_pp, fresh)


DriftRow = tuple[str, Decimal, Decimal, bool]


def drift_rows(targets: Targets, assets: Iterable[str]) -> tuple[DriftRow, ...]:
    """Per asset: its spot and futures target weights, and whether futures are targeted at all."""
    futures, hedged = targets.futures, targets.hedged
    return tuple((a, targets.spot_weight(a), targets.futures_weight(a), bool(futures.get(a) or hedged.get(a)))
                 for a in assets)


def _drift(valuation: Valuation, rows: Iterable[DriftRow], band_pp: Decimal,
           fresh: Freshness) -> tuple[list[Trigger], set[Scope]]:
    triggers, scopes = [], set()
    value, spot_value, notional = valuation.value, valuation.spot_value, valuation.futures_notional
    stale_spot, stale_perp = fresh.stale_spot, fresh.stale_perp
    # outside_band(w, t, band_pp) is |(w − t) × 100| > band_pp; × 100 and / 100 are exact in
    # Decimal, so comparing |w − t| with band_pp / 100 decides every asset the same way.
    band = band_pp / 100
    for asset, target, futures_target, futures_targeted in rows:
        if asset in stale_spot:
            continue
        weight = spot_value.get(asset, ZERO) / value if value else ZERO  # valuation.weight
        if abs(weight - target) > band:
            scopes.add("spot")
            triggers.append(Trigger(
                rule="drift_band", asset=asset,
                explanation=(f"{asset} is {pct(weight, 1)} of the portfolio against a "
                             f"{pct(target, 1)} target ({drift_pp(weight, target):+.1f} pp, band "
                             f"±{band_pp}): outside {pct(target - band_pp / 100, 1)}–"
                             f"{pct(target + band_pp / 100, 1)}"),
                values={"weight": pct(weight), "target": pct(target), "band_pp": str(band_pp),
                        "drift_pp": f"{drift_pp(weight, target):+.2f}"}))
        if not (futures_targeted or notional.get(asset)) or asset in stale_perp:
            continue  # no futures held nor targeted: no futures drift (band_pp > 0)
        fw = notional.get(asset, ZERO) / value if value else ZERO  # valuation.futures_weight
        ft = futures_target
        if abs(fw - ft) > band:
            scopes.add("futures")
            triggers.append(Trigger(
                rule="futures_drift", asset=asset,
                explanation=(f"{asset} futures exposure is {pct(fw, 1)} of the portfolio against "
                             f"{pct(ft, 1)} targeted ({drift_pp(fw, ft):+.1f} pp, band ±{band_pp})"),
                values={"exposure": pct(fw), "target": pct(ft), "band_pp": str(band_pp)}))
    return triggers, scopes


class Evaluator:
    """Evaluations of one strategy: its rules, stablecoins and resolved targets, built once.

    A backtest's book holds one for its whole run; `evaluate()` finds one per settings and
    strategy. It keeps no rule state (that is the caller's), only results of pure functions.
    """

    def __init__(self, settings: Settings, strategy: Strategy | None = None) -> None:
        self.settings = settings
        self.strategy = strategy = strategy or settings.strategy
        self.rules: tuple[Rule, ...] = tuple(build_rules(strategy))
        self.stablecoins = frozenset(settings.stablecoins) | {settings.quote}
        self._limits = tuple(settings.staleness.model_dump().values())
        self._resolver = _Resolver(settings.assets, frozenset())  # replaced when the perps change
        known: tuple[Targets | None, tuple[DriftRow, ...], frozenset[str]] = (None, (), frozenset())
        self._drift_known = known
        self._applied: dict[tuple[int, int], tuple[Effect, Targets, Targets]] = {}

    def reading(self, snapshot: MarketSnapshot) -> SnapshotReading:
        """Freshness, its warnings and the perps of the snapshot, worked out once for every book."""
        limits = self.settings.staleness
        return _READINGS.get((snapshot,), self._limits, lambda: SnapshotReading.of(snapshot, limits))

    def resolver(self, snapshot: MarketSnapshot) -> Callable[[Allocation], Targets]:
        """Allocation → targets; they depend only on it, the asset table and which assets have a perp."""
        return self._resolver_for(self.reading(snapshot).perps)

    def _resolver_for(self, perps: frozenset[str]) -> _Resolver:
        resolver = self._resolver
        if perps != resolver.perps:
            resolver = self._resolver = _Resolver(self.settings.assets, perps)
        return resolver

    def evaluate(self, snapshot: MarketSnapshot, portfolio: Portfolio, states: Mapping[str, RuleState],
                 explicit_targets: Mapping | None = None) -> Evaluation:
        """Run every enabled rule over the snapshot; time is the snapshot's `as_of`.

        `states` itself is returned as the new states when no rule changed state.
        """
        strategy, reading = self.strategy, self.reading(snapshot)
        fresh = reading.freshness
        valuation = value_portfolio(portfolio, snapshot, self.stablecoins)
        if explicit_targets:
            resolve, base = None, targets_from_weights(explicit_targets, snapshot.quote)
        else:
            resolve = self._resolver_for(reading.perps)
            base = resolve(strategy.allocation)
        ctx = RuleContext(snapshot=snapshot, valuation=valuation, base=base, strategy=strategy,
                          now=snapshot.as_of, freshness=fresh, resolve=resolve)
        targets, triggers, changed = base, [], {}
        scopes: set[Scope] = set()
        warnings = list(reading.warnings)
        for rule in self.rules:
            for outcome in rule.evaluate(ctx, states):
                if states.get(outcome.key) is not outcome.state:
                    changed[outcome.key] = outcome.state
                if outcome.warnings:
                    warnings.extend(outcome.warnings)
                if outcome.effect is not None:
                    targets = self._apply(outcome.effect, targets)
                if outcome.trigger is not None:
                    triggers.append(outcome.trigger)
                    scopes |= outcome.scopes
        if strategy.rules.drift.enabled:
            drift, drift_scopes = _drift(valuation, self._drift_rows(targets, valuation), strategy.band_pp,
                                         fresh)
            triggers.extend(drift)
            scopes |= drift_scopes
        return Evaluation(tuple(triggers), base, targets, {**states, **changed} if changed else states,
                          frozenset(scopes), tuple(warnings), valuation, fresh)

    def _apply(self, effect: Effect, targets: Targets) -> Targets:
        """`effect(targets)`, remembered: a rule at rest applies the same effect to the same targets
        day after day, and the drift rows of the result are then known too (effects are pure)."""
        key = (id(effect), id(targets))
        hit = self._applied.get(key)  # the entry holds both: their ids are not reused
        if hit is None:
            if len(self._applied) >= 64:
                self._applied.clear()
            hit = self._applied[key] = (effect, targets, effect(targets))
        return hit[2]

    def _drift_rows(self, targets: Targets, valuation: Valuation) -> tuple[DriftRow, ...]:
        """Targeted and held assets in name order, kept while the targets are the same object."""
        known, rows, names = self._drift_known
        if targets is not known:
            rows = drift_rows(targets, targets.assets)
            names = frozenset(targets.assets)
            self._drift_known = (targets, rows, names)
        if names.issuperset(valuation.spot_value):
            return rows
        held = [a for a, v in valuation.spot_value.items() if v and a not in names]
        return drift_rows(targets, sorted(names.union(held))) if held else rows


class _Resolver:
    """Allocation → targets for one asset table and set of assets with a perpetual, remembered."""

    def __init__(self, assets: Mapping[str, AssetConfig], perps: frozenset[str]) -> None:
        self.assets, self.perps = assets, perps
        self._resolved: dict[int, tuple[Allocation, Targets]] = {}

    def __call__(self, allocation: Allocation) -> Targets:
        hit = self._resolved.get(id(allocation))  # the entry holds the allocation: its id is not reused
        if hit is None:
            targets = resolve_targets(allocation, self.assets, set(self.perps))
            hit = self._resolved[id(allocation)] = (allocation, targets)
        return hit[1]


def _evaluator(settings: Settings, strategy: Strategy) -> Evaluator:
    # Rules hold only their config: one evaluator per settings and strategy serves every evaluation.
    return _EVALUATORS.get((settings, strategy), (), lambda: Evaluator(settings, strategy))


def evaluate(
    snapshot: MarketSnapshot,
    portfolio: Portfolio,
    settings: Settings,
    states: Mapping[str, RuleState],
    *,
    strategy: Strategy | None = None,
    explicit_targets: Mapping | None = None,
) -> Evaluation:
    """Run every enabled rule over the snapshot; time is the snapshot's `as_of`."""
    return _evaluator(settings, strategy or settings.strategy).evaluate(
        snapshot, portfolio, states, explicit_targets)
