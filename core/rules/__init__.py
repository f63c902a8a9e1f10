"""Trigger rules: one module per family, each rule a small persisted state machine."""

from core.rules.base import Freshness, Outcome, Rule, RuleContext, RuleState, Scope
from core.rules.overlay import CorrectionHedge, FearGreedExtreme, FundingExtreme, NegativeFunding
from core.rules.premium import PremiumRegime
from core.rules.regimes import FundingRegime, Recovery
from core.rules.volatility import VolatilitySpike
from core.strategy_config import Strategy

__all__ = ["Freshness", "Outcome", "Rule", "RuleContext", "RuleState", "Scope", "build_rules"]


def build_rules(strategy: Strategy) -> list[Rule]:
    """The enabled rules of a strategy, allocation-changing ones first so overlays apply on top."""
    r = strategy.rules
    candidates: list[tuple[bool, Rule]] = [
        (r.funding_regime.enabled, FundingRegime(r.funding_regime, r.hurdle)),
        (r.recovery.enabled, Recovery(r.recovery)),
        (r.premium_regime.enabled, PremiumRegime(r.premium_regime, r.hurdle)),
        (r.volatility_spike.enabled, VolatilitySpike(r.volatility_spike)),
        (r.negative_funding.enabled, NegativeFunding(r.negative_funding)),
        (r.funding_extreme.enabled, FundingExtreme(r.funding_extreme)),
        (r.correction_hedge.enabled, CorrectionHedge(r.correction_hedge)),
        # Net neutral last: extreme fear overrides every other futures adjustment.
        (r.fear_greed.enabled, FearGreedExtreme(r.fear_greed)),
    ]
    return [rule for enabled, rule in candidates if enabled]
