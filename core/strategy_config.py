"""The strategy part of the settings: allocation tables, rule thresholds and the preset chosen.

Each rule type of the seeds has its typed section here; `config/presets.toml` fills them per
preset and the user's `[strategy]` table may override any value (see core/config.py).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# ── strategy ────────────────────────────────────────────────────────────────────────────────


class Allocation(Frozen):
    """Fractions of portfolio value. Keys other than stable/hedged/futures are spot buckets."""

    buckets: dict[str, Decimal]
    stable: Decimal = Decimal(0)
    hedged: Decimal = Decimal(0)
    futures: Decimal = Decimal(0)

    @model_validator(mode="before")
    @classmethod
    def _collect_buckets(cls, data: Any) -> Any:
        if isinstance(data, dict) and "buckets" not in data:
            fixed = {k: data[k] for k in ("stable", "hedged", "futures") if k in data}
            return {**fixed, "buckets": {k: v for k, v in data.items() if k not in fixed}}
        return data

    @model_validator(mode="after")
    def _sums_to_one(self) -> Allocation:
        for name, share in [*self.buckets.items(), ("stable", self.stable), ("hedged", self.hedged)]:
            if share < 0 or share > 1:
                raise ValueError(f"allocation '{name}' is {share}; use a fraction between 0 and 1")
        if abs(self.futures) > 1:
            raise ValueError("futures (net directional exposure) must be within -1 and 1")
        # The futures share is capital too: its margin sits in stablecoins (seed 003 tables add
        # spot + stable + futures to 100%).
        total = sum(self.buckets.values(), Decimal(0)) + self.stable + self.hedged + abs(self.futures)
        if abs(total - 1) > Decimal("0.0001"):
            raise ValueError(
                f"spot buckets + hedged + stable + |futures| add up to {total}, not 1;"
                " fix the fractions"
            )
        return self


class Persistence(Frozen):
    """How "held for N days" is judged over settled funding prints in the window."""

    mode: Literal["every", "mean_share"] = "mean_share"
    min_share: Decimal = Decimal("0.8")
    min_prints: int = 3


class DriftRule(Frozen):
    enabled: bool = True


class FundingRegimeRule(Frozen):
    """Seed 000: spot ⇄ hedged yield on funding APR held over a window (hysteresis)."""

    enabled: bool = False
    enter_apr: Decimal = Decimal("0.10")
    exit_apr: Decimal = Decimal("0.05")
    hold_days: int = 14
    exit_hold_days: int = 3
    start: Literal["low", "high"] = "low"
    low_allocation: Allocation | None = None
    high_allocation: Allocation | None = None
    reference_asset: str = "BTC"


class RecoveryRule(Frozen):
    """Seed 000 defensive → spot: sustained bottoming plus strongly positive funding."""

    enabled: bool = False
    funding_apr_above: Decimal = Decimal("0.10")
    hold_days: int = 7
    bounce_from_low: Decimal = Decimal("0.10")
    low_window_days: int = 60
    recovered_allocation: Allocation | None = None
    reference_asset: str = "BTC"


class PremiumRegimeRule(Frozen):
    """Seed 002: the annualized premium table per asset."""

    enabled: bool = False
    accumulate_below: Decimal = Decimal("-0.10")
    accumulate_exit_above: Decimal = Decimal("-0.05")
    basis_above: Decimal = Decimal("0.05")
    derisk_above: Decimal = Decimal("0.20")
    exit_below: Decimal = Decimal("0.05")
    accumulate_shift: Decimal = Decimal("0.10")
    basis_share: Decimal = Decimal("0.30")
    derisk_spot_share: Decimal = Decimal("0.50")
    derisk_mode: Literal["sell", "hedge"] = "sell"
    # Days of settled prints a perpetual's premium is judged on (a dated basis needs none).
    hold_days: int = Field(3, ge=2)


class VolatilitySpikeRule(Frozen):
    """Seed 003: 7-day volatility ≥ k × baseline → reduce that asset."""

    enabled: bool = True
    short_days: int = 7
    long_days: int = 30
    ratio: Decimal = Decimal("2.0")
    reset_ratio: Decimal = Decimal("1.3")
    reduce_by: Decimal = Decimal("0.5")


class FearGreedRule(Frozen):
    """Seed 003 Balanced Aggression: extreme fear → futures book to net neutral."""

    enabled: bool = False
    below: int = 25
    reset_above: int = 35


class FundingExtremeRule(Frozen):
    """Seed 003 Aggressive Growth: funding above +0.05%/8h held → cut net long by half."""

    enabled: bool = False
    rate_8h_above: Decimal = Decimal("0.0005")
    normal_rate_8h_below: Decimal = Decimal("0.0003")
    hold_days: int = 3
    cut_by: Decimal = Decimal("0.5")


class NegativeFundingRule(Frozen):
    """Seed 003 Conservative Growth: funding below −0.01%/8h held → add net long up to a cap."""

    enabled: bool = False
    rate_8h_below: Decimal = Decimal("-0.0001")
    reset_rate_8h_above: Decimal = Decimal("0")
    hold_days: int = 3
    step: Decimal = Decimal("0.05")
    cap: Decimal = Decimal("0.15")


class CorrectionHedgeRule(Frozen):
    """Seed 003 §7: short hedged_share × value × expected_drop when a correction is feared."""

    enabled: bool = False
    active: bool = False
    greed_above: int | None = 80
    reset_below: int = 60
    hedged_share: Decimal = Decimal("0.5")
    expected_drop: Decimal = Decimal("0.2")
    hedge_asset: str = "BTC"


class HurdleRule(Frozen):
    """Seed 000: the basis trade must beat a minimum annual yield."""

    min_apr: Decimal = Decimal("0.08")


class Rules(Frozen):
    drift: DriftRule = DriftRule()
    funding_regime: FundingRegimeRule = FundingRegimeRule()
    recovery: RecoveryRule = RecoveryRule()
    premium_regime: PremiumRegimeRule = PremiumRegimeRule()
    volatility_spike: VolatilitySpikeRule = VolatilitySpikeRule()
    fear_greed: FearGreedRule = FearGreedRule()
    funding_extreme: FundingExtremeRule = FundingExtremeRule()
    negative_funding: NegativeFundingRule = NegativeFundingRule()
    correction_hedge: CorrectionHedgeRule = CorrectionHedgeRule()
    hurdle: HurdleRule = HurdleRule()
    persistence: Persistence = Persistence()


class Strategy(Frozen):
    name: str
    seed: str = ""
    title: str = ""
    band_pp: Decimal = Decimal(5)
    allocation: Allocation
    rules: Rules = Rules()

    @field_validator("band_pp")
    @classmethod
    def _band_positive(cls, v: Decimal) -> Decimal:
        if v <= 0 or v >= 50:
            raise ValueError("band_pp is in percentage points, between 0 and 50 (e.g. 5)")
        return v
