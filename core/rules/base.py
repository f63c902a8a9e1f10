"""What every rule shares: its persisted state, what it sees, and what it returns.

A rule is a small state machine. Each evaluation it may change state (that is a Trigger, which
explains itself) and, while in a state, it may hold an Effect on the targets. Effects apply every
cycle; triggers only on a change, so a restart that reloads the state neither forgets a
hysteresis nor repeats an alert.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Literal, Protocol

from core.models import MarketSnapshot, PerpQuote, Trigger
from core.portfolio import Valuation
from core.signals import PrintWindow, Unit, funding_held_window
from core.strategy_config import Allocation, Strategy
from core.targets import Targets

Scope = Literal["spot", "futures"]
# Effects are pure: the same effect object given the same Targets gives equal targets, so an
# evaluator may reuse what an effect made of those very targets before.
Effect = Callable[[Targets], Targets]


@dataclass(frozen=True, slots=True)
class RuleState:
    state: str
    since: datetime
    data: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Freshness:
    """Which parts of the snapshot are within their staleness limits."""

    stale_spot: frozenset[str] = frozenset()
    stale_perp: frozenset[str] = frozenset()
    stale_futures: frozenset[str] = frozenset()
    fear_greed_stale: bool = False
    closes_stale: frozenset[str] = frozenset()

    @property
    def any_spot_stale(self) -> bool:
        return bool(self.stale_spot)


@dataclass(frozen=True, slots=True)
class RuleContext:
    snapshot: MarketSnapshot
    valuation: Valuation
    base: Targets
    strategy: Strategy
    now: datetime
    freshness: Freshness = Freshness()
    # Turns an allocation table into per-asset targets (needs the asset config, not a rule's job).
    resolve: Callable[[Allocation], Targets] | None = None
    # Funding windows judged in this evaluation: rules with equal windows share one.
    windows: dict[tuple[str, int, Unit], PrintWindow] = field(default_factory=dict, compare=False, repr=False)

    def held_window(self, perp: PerpQuote, days: int, unit: Unit) -> PrintWindow:
        """funding_held_window of `perp` over `days` at `now` by the strategy's persistence rule."""
        key = (perp.symbol, days, unit)
        window = self.windows.get(key)
        if window is None:
            window = self.windows[key] = funding_held_window(perp, self.now, days, unit,
                                                             self.strategy.rules.persistence)
        return window


@dataclass(frozen=True, slots=True)
class Outcome:
    """One rule's verdict for one key (a rule, or a rule and an asset)."""

    key: str
    state: RuleState
    trigger: Trigger | None = None
    effect: Effect | None = None
    scopes: frozenset[Scope] = frozenset()
    warnings: tuple[str, ...] = ()


class Rule(Protocol):
    """Outcomes for the keys a rule has news about: one that is new, changes state, holds an
    effect or warns. A key resting in its carried-over state with none of these may be left out:
    the evaluation carries its state over as it is (a backtest's books mostly rest)."""

    name: str

    def evaluate(self, ctx: RuleContext, states: Mapping[str, RuleState]) -> list[Outcome]: ...


def pct(x: Decimal | None, places: int = 2) -> str:
    """A fraction as a percentage for explanations: 0.1095 → '10.95%'."""
    return "n/a" if x is None else f"{x * 100:.{places}f}%"


def carry_state(
    key: str, states: Mapping[str, RuleState], default: str, now: datetime
) -> RuleState:
    """The persisted state for `key`, or a fresh one in `default`."""
    return states.get(key) or RuleState(state=default, since=now)


def transition(
    key: str,
    old: RuleState,
    new_state: str,
    now: datetime,
    *,
    rule: str,
    asset: str | None,
    explanation: str,
    values: Mapping[str, str],
    effect: Effect | None,
    scopes: frozenset[Scope],
) -> Outcome:
    """An outcome that moves `key` from old.state to new_state and says why."""
    trigger = Trigger(
        rule=rule,
        asset=asset,
        explanation=explanation,
        values=dict(values),
        state_from=old.state,
        state_to=new_state,
    )
    return Outcome(key, RuleState(new_state, now), trigger, effect, scopes)


def stay(key: str, old: RuleState, effect: Effect | None, warnings: tuple[str, ...] = ()) -> Outcome:
    return Outcome(key, old, None, effect, frozenset(), warnings)


class Resting:
    """A per-asset rule's keys, effects and resting outcomes, made once per asset.

    A rule resting in a state returns the same outcome object cycle after cycle (the state
    object carries over unchanged), so the many assets and books of a backtest do not build
    them anew. Effects made here must depend only on the asset (and the rule's config).
    """

    def __init__(self, name: str, effect: Callable[[str], Effect] | None = None) -> None:
        self.name, self._effect = name, effect
        self._keys: dict[str, str] = {}
        self._effects: dict[str, Effect] = {}
        self._outcomes: dict[str, Outcome] = {}
        self._slots: dict[tuple[str, ...], tuple[tuple[str, str], ...]] = {}

    def key(self, asset: str) -> str:
        key = self._keys.get(asset)
        if key is None:
            key = self._keys[asset] = f"{self.name}:{asset}"
        return key

    def slots(self, assets: Iterable[str]) -> tuple[tuple[str, str], ...]:
        """(asset, key) of `assets` in name order, worked out once per set of names."""
        names = tuple(assets)
        found = self._slots.get(names)
        if found is None:
            if len(self._slots) > 64:
                self._slots.clear()
            found = self._slots[names] = tuple((a, self.key(a)) for a in sorted(names))
        return found

    def effect(self, asset: str) -> Effect:
        effect = self._effects.get(asset)
        if effect is None:
            assert self._effect is not None  # rules that make their own effects never ask
            effect = self._effects[asset] = self._effect(asset)
        return effect

    def rest(self, outcomes: list[Outcome], key: str, old: RuleState, carried: bool,
             effect: Effect | None) -> None:
        """`key` stays in `old`: said when the state is not `carried` over from the states given
        or holds an effect, left out otherwise (see Rule)."""
        if effect is not None or not carried:
            outcomes.append(self.stay(key, old, effect))

    def stay(self, key: str, old: RuleState, effect: Effect | None) -> Outcome:
        hit = self._outcomes.get(key)
        if hit is None or hit.state is not old or hit.effect is not effect:
            hit = self._outcomes[key] = Outcome(key, old, None, effect, frozenset(), ())
        return hit
