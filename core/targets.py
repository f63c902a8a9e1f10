"""Target exposures per asset, resolved from a strategy's bucket allocation.

A target has three layers per asset, each a fraction of portfolio value: core spot, the hedged
basis trade (spot held plus an equal short perpetual) and directional futures (signed). What
the planner aims at is spot = core + hedged and futures = directional − hedged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal

from core.config import AssetConfig
from core.errors import ConfigError
from core.models import ZERO
from core.strategy_config import Allocation


@dataclass(frozen=True, slots=True)
class Targets:
    spot: Mapping[str, Decimal]
    hedged: Mapping[str, Decimal]
    futures: Mapping[str, Decimal]
    stable: Decimal

    def spot_weight(self, asset: str) -> Decimal:
        return self.spot.get(asset, ZERO) + self.hedged.get(asset, ZERO)

    def futures_weight(self, asset: str) -> Decimal:
        return self.futures.get(asset, ZERO) - self.hedged.get(asset, ZERO)

    @property
    def assets(self) -> list[str]:
        return sorted(set(self.spot) | set(self.hedged) | set(self.futures))

    @property
    def net_futures(self) -> Decimal:
        return sum((self.futures_weight(a) for a in self.assets), ZERO)

    def with_spot(self, asset: str, weight: Decimal) -> Targets:
        """Move `asset`'s core spot to `weight`, the difference going to or from stablecoins."""
        weight = max(ZERO, weight)
        delta = weight - self.spot.get(asset, ZERO)
        take = min(delta, self.stable)  # buying more spot than stables hold is not possible
        return replace(self, spot={**self.spot, asset: self.spot.get(asset, ZERO) + take},
                       stable=self.stable - take)

    def with_hedged(self, asset: str, weight: Decimal) -> Targets:
        return replace(self, hedged={**self.hedged, asset: max(ZERO, weight)})

    def with_futures(self, asset: str, weight: Decimal) -> Targets:
        return replace(self, futures={**self.futures, asset: weight})

    def as_weights(self, quote: str) -> dict[str, Decimal]:
        """Spot weights the planner aims at, with stablecoins under the quote currency."""
        out = {a: self.spot_weight(a) for a in self.assets}
        out[quote] = self.stable
        return out


def _bucket_of(asset: str, cfg: AssetConfig, buckets: Mapping[str, Decimal]) -> str:
    if len(buckets) == 1:
        return next(iter(buckets))
    if cfg.bucket not in buckets:
        raise ConfigError(
            f"assets.{asset}.bucket is '{cfg.bucket}' but the strategy's allocation has buckets "
            f"{', '.join(buckets)}; set bucket to one of them"
        )
    return cfg.bucket


def resolve_targets(
    allocation: Allocation, assets: Mapping[str, AssetConfig], futures_assets: set[str]
) -> Targets:
    """Spread bucket fractions over assets by their split; futures over assets with a perpetual."""
    members: dict[str, list[str]] = {b: [] for b in allocation.buckets}
    for asset, cfg in assets.items():
        members[_bucket_of(asset, cfg, allocation.buckets)].append(asset)
    spot: dict[str, Decimal] = {}
    for bucket, share in allocation.buckets.items():
        names = members[bucket]
        if not names and share > 0:
            raise ConfigError(
                f"strategy allocation gives {share} to bucket '{bucket}' but no asset is in it; "
                f"add bucket = \"{bucket}\" to an [assets.X] table"
            )
        total_split = sum((assets[a].split for a in names), ZERO)
        for a in names:
            spot[a] = share * assets[a].split / total_split
    eligible = [a for a in spot if a in futures_assets]
    weight_base = sum((spot[a] for a in eligible), ZERO)
    hedged: dict[str, Decimal] = {}
    futures: dict[str, Decimal] = {}
    stable = allocation.stable + abs(allocation.futures)
    if eligible and weight_base > 0:
        for a in eligible:
            share = spot[a] / weight_base
            hedged[a] = allocation.hedged * share
            futures[a] = allocation.futures * share
    else:
        # Nothing to hedge with: the hedged slice stays spot and the futures slice stays cash.
        total = sum(spot.values(), ZERO) or Decimal(1)
        spot = {a: w + allocation.hedged * w / total for a, w in spot.items()}
    return Targets(spot=spot, hedged=hedged, futures=futures, stable=stable)


def targets_from_weights(weights: Mapping[str, Decimal], quote: str) -> Targets:
    """Plain per-asset spot targets (the snapshot's strategy.targets); the rest is stablecoins."""
    spot = {a: w for a, w in weights.items() if a != quote}
    total = sum(spot.values(), ZERO)
    if total > 1 or any(w < 0 for w in spot.values()):
        raise ConfigError("strategy.targets must be fractions that add up to at most 1")
    return Targets(spot=spot, hedged={}, futures={}, stable=1 - total)
