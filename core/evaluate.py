"""One evaluation: freshness, rules with their states, effective targets and drift triggers."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.config import Settings, Staleness
from core.memo import SameInputMemo
from core.models import MarketSnapshot, Portfolio, Trigger
from core.portfolio import Valuation, drift_pp, outside_band, value_portfolio
from core.rules import Freshness, RuleContext, RuleState, Scope, build_rules
from core.rules.base import pct
from core.strategy_config import Allocation, Strategy
from core.targets import Targets, resolve_targets, targets_from_weights

FUTURE_SKEW = timedelta(minutes=5)
# A replayed day's snapshot is evaluated once per backtest run: see core/memo.py.
_FRESHNESS: SameInputMemo[Freshness] = SameInputMemo(64)
_TARGETS: SameInputMemo[Targets] = SameInputMemo(256)
_RULES: SameInputMemo[list] = SameInputMemo(64)
_PERPS: SameInputMemo[frozenset[str]] = SameInputMemo(64)


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


def target_resolver(settings: Settings, snapshot: MarketSnapshot) -> Callable[[Allocation], Targets]:
    perps = _PERPS.get((snapshot,), (), lambda: frozenset(
        a for a, m in snapshot.assets.items() if m.perp is not None))
    # Targets depend only on the allocation, the asset table and which assets have a perpetual.
    return lambda allocation: _TARGETS.get(
        (allocation, settings.assets), (perps,),
        lambda: resolve_targets(allocation, settings.assets, set(perps)))


def base_targets(settings: Settings, snapshot: MarketSnapshot, strategy: Strategy,
                 explicit: Mapping | None = None,
                 resolve: Callable[[Allocation], Targets] | None = None) -> Targets:
    """The strategy's allocation as per-asset targets, or explicit per-asset weights."""
    if explicit:
        return targets_from_weights(explicit, snapshot.quote)
    return (resolve or target_resolver(settings, snapshot))(strategy.allocation)


def drift_triggers(valuation: Valuation, targets: Targets, band_pp, assets: Iterable[str],
                   fresh: Freshness) -> tuple[list[Trigger], set[Scope]]:
    triggers, scopes = [], set()
    for asset in sorted(assets):
        if asset in fresh.stale_spot:
            continue
        weight, target = valuation.weight(asset), targets.spot_weight(asset)
        if outside_band(weight, target, band_pp):
            scopes.add("spot")
            triggers.append(Trigger(
                rule="drift_band", asset=asset,
                explanation=(f"{asset} is {pct(weight, 1)} of the portfolio against a "
                             f"{pct(target, 1)} target ({drift_pp(weight, target):+.1f} pp, band "
                             f"±{band_pp}): outside {pct(target - band_pp / 100, 1)}–"
                             f"{pct(target + band_pp / 100, 1)}"),
                values={"weight": pct(weight), "target": pct(target), "band_pp": str(band_pp),
                        "drift_pp": f"{drift_pp(weight, target):+.2f}"}))
        if not (valuation.futures_notional.get(asset) or targets.futures.get(asset)
                or targets.hedged.get(asset)):
            continue  # no futures held nor targeted: no futures drift (band_pp > 0)
        fw, ft = valuation.futures_weight(asset), targets.futures_weight(asset)
        if asset not in fresh.stale_perp and outside_band(fw, ft, band_pp):
            scopes.add("futures")
            triggers.append(Trigger(
                rule="futures_drift", asset=asset,
                explanation=(f"{asset} futures exposure is {pct(fw, 1)} of the portfolio against "
                             f"{pct(ft, 1)} targeted ({drift_pp(fw, ft):+.1f} pp, band ±{band_pp})"),
                values={"exposure": pct(fw), "target": pct(ft), "band_pp": str(band_pp)}))
    return triggers, scopes


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
    strategy = strategy or settings.strategy
    fresh = _FRESHNESS.get((snapshot,), (settings.staleness,),
                           lambda: check_freshness(snapshot, settings.staleness))
    valuation = value_portfolio(portfolio, snapshot, settings.stablecoins)
    resolve = None if explicit_targets else target_resolver(settings, snapshot)
    base = base_targets(settings, snapshot, strategy, explicit_targets, resolve)
    ctx = RuleContext(snapshot=snapshot, valuation=valuation, base=base, strategy=strategy,
                      now=snapshot.as_of, freshness=fresh, resolve=resolve)
    targets, triggers, new_states = base, [], dict(states)
    scopes: set[Scope] = set()
    warnings = freshness_warnings(fresh)
    # Rules hold only their config: one set per strategy object serves every evaluation.
    for rule in _RULES.get((strategy,), (), lambda: build_rules(strategy)):
        for outcome in rule.evaluate(ctx, states):
            new_states[outcome.key] = outcome.state
            warnings.extend(outcome.warnings)
            if outcome.effect is not None:
                targets = outcome.effect(targets)
            if outcome.trigger is not None:
                triggers.append(outcome.trigger)
                scopes |= outcome.scopes
    if strategy.rules.drift.enabled:
        held = {a for a, v in valuation.spot_value.items() if v}
        drift, drift_scopes = drift_triggers(valuation, targets, strategy.band_pp,
                                             set(targets.assets) | held, fresh)
        triggers.extend(drift)
        scopes |= drift_scopes
    return Evaluation(tuple(triggers), base, targets, new_states, frozenset(scopes),
                      tuple(warnings), valuation, fresh)
