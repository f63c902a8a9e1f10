"""Seed 003's futures overlay: fear to net neutral, funding extremes, the correction hedge."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from core.models import ZERO, PerpQuote
from core.rules.base import Outcome, Resting, RuleContext, RuleState, pct, transition
from core.signals import rate_per_8h
from core.strategy_config import CorrectionHedgeRule, FearGreedRule, FundingExtremeRule, NegativeFundingRule
from core.targets import Targets

FUTURES = frozenset({"futures"})


def to_net_neutral(t: Targets) -> Targets:
    for asset in list(t.futures):
        t = t.with_futures(asset, ZERO)
    return t


class FearGreedExtreme:
    """Fear & Greed below `below` → futures book to net neutral until it recovers."""

    name = "fear_greed"

    def __init__(self, cfg: FearGreedRule) -> None:
        self.cfg = cfg
        self.resting = Resting(self.name)

    def evaluate(self, ctx: RuleContext, states: Mapping[str, RuleState]) -> list[Outcome]:
        cfg, key = self.cfg, self.name
        carried = states.get(key)
        old = carried or RuleState("normal", ctx.now)  # carry_state
        fg = None if ctx.freshness.fear_greed_stale else ctx.snapshot.fear_greed
        if fg is None or not ((old.state == "normal" and fg.value < cfg.below)
                              or (old.state == "fear" and fg.value > cfg.reset_above)):
            outcomes: list[Outcome] = []
            effect = to_net_neutral if old.state == "fear" else None
            self.resting.rest(outcomes, key, old, old is carried, effect)
            return outcomes
        values = {"fear_greed": str(fg.value), "label": fg.label, "below": str(cfg.below),
                  "reset_above": str(cfg.reset_above)}
        if old.state == "normal":
            return [transition(
                key, old, "fear", ctx.now, rule=key, asset=None,
                explanation=(f"Fear & Greed is {fg.value} ({fg.label}), below {cfg.below}: move the "
                             "futures book to net neutral until sentiment improves"),
                values=values, effect=to_net_neutral, scopes=FUTURES)]
        return [transition(
            key, old, "normal", ctx.now, rule=key, asset=None,
            explanation=(f"Fear & Greed recovered to {fg.value} ({fg.label}), above "
                         f"{cfg.reset_above}: restore the target net long futures exposure"),
            values=values, effect=None, scopes=FUTURES)]


class _PerAssetFunding:
    """Shared walk over assets with a fresh perpetual, holding a per-asset state."""

    name = ""
    active = ""
    resting: Resting

    def effect(self, asset: str, ctx: RuleContext):  # pragma: no cover - overridden
        raise NotImplementedError

    def check(self, ctx: RuleContext, old: RuleState, asset: str,
              perp: PerpQuote) -> tuple[str, str, dict[str, str]] | None:  # pragma: no cover
        raise NotImplementedError

    def evaluate(self, ctx: RuleContext, states: Mapping[str, RuleState]) -> list[Outcome]:
        outcomes, resting, now, markets = [], self.resting, ctx.now, ctx.snapshot.assets
        for asset, key in resting.slots(markets):
            perp = markets[asset].perp
            if perp is None:
                continue
            carried = states.get(key)
            old = carried or RuleState("normal", now)  # carry_state
            verdict = None if asset in ctx.freshness.stale_perp else self.check(ctx, old, asset, perp)
            if verdict is None:
                effect = self.effect(asset, ctx) if old.state == self.active else None
                resting.rest(outcomes, key, old, old is carried, effect)
                continue
            new, explanation, values = verdict
            outcomes.append(transition(
                key, old, new, now, rule=self.name, asset=asset, explanation=explanation,
                values=values, effect=self.effect(asset, ctx) if new == self.active else None,
                scopes=FUTURES))
        return outcomes


class FundingExtreme(_PerAssetFunding):
    """Funding above +0.05%/8h held → cut the net long futures by half until it normalizes."""

    name, active = "funding_extreme", "extreme"

    def __init__(self, cfg: FundingExtremeRule) -> None:
        self.cfg = cfg
        self.resting = Resting(self.name, self._cut)

    def effect(self, asset: str, ctx: RuleContext):
        return self.resting.effect(asset)  # depends on the asset alone: made once

    def _cut(self, asset: str):
        keep = 1 - self.cfg.cut_by

        def cut(t: Targets) -> Targets:
            long = t.futures.get(asset, ZERO)
            return t.with_futures(asset, long * keep) if long > 0 else t
        return cut

    def check(self, ctx, old, asset, perp):
        cfg = self.cfg
        if old.state == "normal":
            window = ctx.held_window(perp, cfg.hold_days, "8h")
            if window.holds(cfg.rate_8h_above, "above"):
                verdict = window.held(cfg.rate_8h_above, "above")
                return "extreme", (
                    f"{asset} funding stayed above {pct(cfg.rate_8h_above, 3)}/8h for {cfg.hold_days} "
                    f"days ({verdict.describe('/8h')}): excessive greed, cut the net long futures "
                    f"by {pct(cfg.cut_by, 0)}"
                ), {"funding_8h_mean": pct(verdict.mean, 4), "threshold_8h": pct(cfg.rate_8h_above, 3)}
            return None
        rate8 = rate_per_8h(perp.funding_rate, perp.funding_interval_hours)
        if rate8 < cfg.normal_rate_8h_below:
            return "normal", (
                f"{asset} funding normalized to {pct(rate8, 4)}/8h (below "
                f"{pct(cfg.normal_rate_8h_below, 3)}): restore the net long futures"
            ), {"funding_8h": pct(rate8, 4), "normal_below": pct(cfg.normal_rate_8h_below, 3)}
        return None


class NegativeFunding(_PerAssetFunding):
    """Funding below −0.01%/8h held → add net long futures in steps, up to a cap."""

    name, active = "negative_funding", "negative"

    def __init__(self, cfg: NegativeFundingRule) -> None:
        self.cfg = cfg
        self.resting = Resting(self.name)

    def effect(self, asset: str, ctx: RuleContext):
        cfg, base = self.cfg, ctx.base
        eligible = [a for a in base.assets if ctx.snapshot.assets.get(a) and ctx.snapshot.assets[a].perp]
        weights = {a: base.spot_weight(a) for a in eligible}
        share = weights.get(asset, ZERO) / (sum(weights.values(), ZERO) or Decimal(1))

        def add_long(t: Targets) -> Targets:
            room = max(ZERO, cfg.cap - t.net_futures)
            return t.with_futures(asset, t.futures.get(asset, ZERO) + min(cfg.step * share, room))
        return add_long

    def check(self, ctx, old, asset, perp):
        cfg = self.cfg
        if old.state == "normal":
            window = ctx.held_window(perp, cfg.hold_days, "8h")
            if window.holds(cfg.rate_8h_below, "below"):
                verdict = window.held(cfg.rate_8h_below, "below")
                return "negative", (
                    f"{asset} funding stayed below {pct(cfg.rate_8h_below, 3)}/8h for {cfg.hold_days} "
                    f"days ({verdict.describe('/8h')}): crowded shorts, add net long futures up to "
                    f"{pct(cfg.cap, 0)} of the portfolio"
                ), {"funding_8h_mean": pct(verdict.mean, 4), "threshold_8h": pct(cfg.rate_8h_below, 3),
                    "cap": pct(cfg.cap, 0)}
            return None
        rate8 = rate_per_8h(perp.funding_rate, perp.funding_interval_hours)
        if rate8 >= cfg.reset_rate_8h_above:
            return "normal", (
                f"{asset} funding is back to {pct(rate8, 4)}/8h: return to the target net long"
            ), {"funding_8h": pct(rate8, 4)}
        return None


class CorrectionHedge:
    """Seed 003 §7: short hedged_share × value × expected_drop while a correction is feared."""

    name = "correction_hedge"

    def __init__(self, cfg: CorrectionHedgeRule) -> None:
        self.cfg = cfg
        self.resting = Resting(self.name)

    def hedge(self, t: Targets) -> Targets:
        cfg = self.cfg
        return t.with_futures(cfg.hedge_asset, t.futures.get(cfg.hedge_asset, ZERO)
                              - cfg.hedged_share * cfg.expected_drop)

    def evaluate(self, ctx: RuleContext, states: Mapping[str, RuleState]) -> list[Outcome]:
        cfg, key = self.cfg, self.name
        carried = states.get(key)
        old = carried or RuleState("off", ctx.now)  # carry_state
        fg = None if ctx.freshness.fear_greed_stale else ctx.snapshot.fear_greed
        greedy = fg is not None and cfg.greed_above is not None and fg.value > cfg.greed_above
        calm = not cfg.active and (fg is None or fg.value < cfg.reset_below)
        turns_on = old.state == "off" and (cfg.active or greedy)
        if not (turns_on or (old.state == "on" and calm and fg is not None)):
            outcomes: list[Outcome] = []
            self.resting.rest(outcomes, key, old, old is carried, self.hedge if old.state == "on" else None)
            return outcomes
        notional = cfg.hedged_share * ctx.valuation.value * cfg.expected_drop
        values = {"hedged_share": pct(cfg.hedged_share, 0), "expected_drop": pct(cfg.expected_drop, 0),
                  "portfolio_value": f"{ctx.valuation.value:.2f}", "hedge_notional": f"{notional:.2f}"}
        if turns_on:
            why = "you asked for it (active = true)" if cfg.active else (
                f"Fear & Greed is {fg.value} ({fg.label}), above {cfg.greed_above}")
            return [transition(
                key, old, "on", ctx.now, rule=key, asset=cfg.hedge_asset,
                explanation=(f"Correction hedge because {why}: short {cfg.hedge_asset} for "
                             f"{pct(cfg.hedged_share, 0)} × {ctx.valuation.value:,.0f} × "
                             f"{pct(cfg.expected_drop, 0)} = {notional:,.0f} {ctx.snapshot.quote} notional"),
                values=values, effect=self.hedge, scopes=FUTURES)]
        assert fg is not None  # turning off needs a calm reading
        return [transition(
            key, old, "off", ctx.now, rule=key, asset=cfg.hedge_asset,
            explanation=(f"Fear & Greed cooled to {fg.value} ({fg.label}), below "
                         f"{cfg.reset_below}: close the correction hedge"),
            values=values, effect=None, scopes=FUTURES)]
