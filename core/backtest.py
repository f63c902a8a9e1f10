"""Backtests: replay history day by day through evaluate → plan → paper_fill → apply_fills.

Each preset runs beside three baselines built from the same allocation and the same machinery:
buy-and-hold (allocate once, never trade again), calendar rebalancing (back to the targets on
the first day of each month) and bands only (the drift rule alone, checked daily). Pure: data
comes in as a `HistoryFrame`, nothing is read or written here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from core.backtest_sim import Simulation
from core.config import Settings, settings_from_dict
from core.errors import PremiaError
from core.history_csv import HistoryFrame
from core.metrics import Performance, summarize
from core.models import MarketSnapshot, Portfolio
from core.replay import Replay, closes_days_needed, funding_days_needed
from core.rules.premium import hold_days
from core.strategy_config import DriftRule, Rules, Strategy, VolatilitySpikeRule

DEFAULT_INITIAL = Decimal(100_000)
STRATEGY = "strategy"
BASELINES = ("buy-and-hold", "monthly", "bands-only")
VARIANTS = (STRATEGY, *BASELINES)
# The calendar baseline trades back to the exact targets: a band this thin always fires.
CALENDAR_BAND = Decimal("0.01")
# States a rule rests in; time in any other state is what "time in each regime" reports.
RESTING = frozenset({"normal", "low", "baseline", "off", "defensive"})

Progress = Callable[[int, int], None]


class BacktestError(PremiaError):
    """A backtest cannot run as asked (no history in range, bad dates)."""


@dataclass(frozen=True, slots=True)
class RunResult:
    """One simulated book over the period: its equity curve, costs, carry and activity."""

    variant: str
    preset: str
    equity: tuple[tuple[date, Decimal], ...]
    performance: Performance
    initial_value: Decimal
    final_value: Decimal
    fees: Decimal
    slippage: Decimal
    funding: Decimal
    futures_pnl: Decimal
    traded: Decimal
    rebalances: int
    proposals: int
    orders: int
    unfilled: int
    margin_calls: int
    triggers: Mapping[str, int]
    regime_days: Mapping[str, Mapping[str, int]]
    notes: tuple[str, ...] = ()

    @property
    def days(self) -> int:
        return len(self.equity)

    def regime_share(self) -> dict[str, dict[str, float]]:
        """Per rule, the share of evaluated (asset-)days spent in each state."""
        out: dict[str, dict[str, float]] = {}
        for rule, counts in self.regime_days.items():
            total = sum(counts.values())
            out[rule] = {s: n / total for s, n in sorted(counts.items())} if total else {}
        return out

    def regime_summary(self) -> str:
        """Time outside the resting states, e.g. "funding_regime high 31%, fear_greed fear 12%"."""
        parts = [f"{rule} {state} {share:.0%}" if share >= 0.01 else f"{rule} {state} <1%"
                 for rule, shares in self.regime_share().items()
                 for state, share in shares.items() if state not in RESTING and share > 0]
        return ", ".join(parts) or "-"


@dataclass(frozen=True, slots=True)
class BacktestResult:
    """A preset's run and its baselines over the same days."""

    preset: str
    title: str
    start: date
    end: date
    source: str
    runs: Mapping[str, RunResult]
    notes: tuple[str, ...] = field(default=())

    @property
    def strategy(self) -> RunResult:
        return self.runs[STRATEGY]


# ── settings per preset and variant ─────────────────────────────────────────────────────────


def preset_settings(settings: Settings, preset: str) -> Settings:
    """`settings` with strategy `preset` (the user's own overrides kept when it is their preset)."""
    if settings.strategy.name == preset:
        return settings
    raw = settings.model_dump(mode="python")
    raw["strategy"] = {"preset": preset}
    return settings_from_dict(raw, source=f"config with preset {preset}")


def variant_strategy(strategy: Strategy, variant: str) -> Strategy:
    """The strategy a variant runs: the preset itself, or its allocation with the drift rule only."""
    if variant == STRATEGY:
        return strategy
    if variant not in BASELINES:
        raise BacktestError(f"unknown variant '{variant}'; use one of {', '.join(VARIANTS)}")
    rules = Rules(drift=DriftRule(enabled=True), volatility_spike=VolatilitySpikeRule(enabled=False),
                  hurdle=strategy.rules.hurdle, persistence=strategy.rules.persistence)
    band = strategy.band_pp if variant == "bands-only" else CALENDAR_BAND
    return strategy.model_copy(update={"rules": rules, "band_pp": band})


def _decides(variant: str, i: int, day: date, previous: date | None) -> bool:
    if variant == "buy-and-hold":
        return i == 0
    if variant == "monthly":
        return previous is None or (day.year, day.month) != (previous.year, previous.month)
    return True


# ── running ─────────────────────────────────────────────────────────────────────────────────


def funding_days(settings: Settings) -> int:
    """Days of funding prints a strategy's rules read, the premium table's window included."""
    r = settings.strategy.rules
    # Two spare days, as funding_days_needed counts them (the print before a window is read too).
    premium = hold_days(r.premium_regime) + 2 if r.premium_regime.enabled else 0
    return max(funding_days_needed(settings), premium)


def shared_replay(frame: HistoryFrame, settings: Settings, presets: Iterable[str],
                  perp_closes: Mapping[str, Mapping[date, Decimal]] | None = None) -> Replay:
    """One replay wide enough for every preset, so all runs share the same snapshot objects."""
    chosen = [preset_settings(settings, p) for p in presets] or [settings]
    return Replay(frame, settings, perp_closes,
                  funding_days=max(funding_days(s) for s in chosen),
                  closes_days=max(closes_days_needed(s) for s in chosen))


def trading_days(replay: Replay, start: date | None, end: date | None) -> tuple[tuple[date, ...], list[str]]:
    """The days to replay in [start, end], with a note when the data starts later than asked."""
    if start and end and end < start:
        raise BacktestError(f"--to {end} is before --from {start}")
    frame = replay.frame
    days = replay.trading_days(start, end)
    if len(days) < 2:
        have = f"covers {frame.start} to {frame.end}" if frame.days else "has nothing in that range"
        raise BacktestError(
            f"not enough history between {start or 'the start'} and {end or 'the end'} for "
            f"{', '.join(replay.assets) or 'the configured assets'}: the data ({frame.source}) "
            f"{have}; pick dates inside it")
    notes = []
    if start and days[0] > start:
        notes.append(f"starts on {days[0]}, the first day with a close for every asset")
    return days, notes


@dataclass
class _Book:
    """One run in progress: its simulation and equity so far."""

    settings: Settings
    variant: str
    sim: Simulation
    equity: list[tuple[date, Decimal]] = field(default_factory=list)
    previous: date | None = None

    def step(self, i: int, day: date, snap: MarketSnapshot) -> None:
        sim = self.sim
        if sim.bankrupt:
            return
        sim.settle(snap)
        if sim.bankrupt:
            return
        value = None
        if _decides(self.variant, i, day, self.previous):
            ev = sim.evaluate(snap)
            value = ev.valuation.value
            if ev.triggers:
                orders = sim.propose(ev, snap)
                if orders and sim.execute(orders, snap):
                    value = None  # trades changed the book: value it again
        self.equity.append((day, value if value is not None else sim.value(snap)))
        self.previous = day

    def result(self, initial_value: Decimal) -> RunResult:
        ledger, equity = self.sim.ledger, self.equity
        return RunResult(
            variant=self.variant, preset=self.settings.strategy.name, equity=tuple(equity),
            performance=summarize([(d, float(v)) for d, v in equity], [ledger.traded]),
            initial_value=initial_value,
            final_value=equity[-1][1], fees=ledger.fees, slippage=ledger.slippage,
            funding=ledger.funding, futures_pnl=ledger.futures_pnl, traded=ledger.traded,
            rebalances=ledger.rebalances, proposals=ledger.proposals, orders=ledger.orders,
            unfilled=ledger.unfilled, margin_calls=ledger.margin_calls, triggers=dict(ledger.triggers),
            regime_days=self.sim.regime_days(), notes=tuple(ledger.notes))


def run_many(replay: Replay, runs: Sequence[tuple[Settings, str]], days: Sequence[date],
             initial_value: Decimal = DEFAULT_INITIAL, progress: Progress | None = None) -> list[RunResult]:
    """Several books (settings, variant) stepped together, day by day.

    Lockstep keeps one day's snapshot, and the signals derived from it, hot for every run.
    """
    books = [_Book(s, v, Simulation(s, variant_strategy(s.strategy, v), replay,
                                    Portfolio({s.quote: initial_value})))
             for s, v in runs]
    for i, day in enumerate(days):
        snap = replay.snapshot(day)
        for book in books:
            book.step(i, day, snap)
        if progress is not None:
            progress(i + 1, len(days))
    return [b.result(initial_value) for b in books]


def run_backtest(
    frame: HistoryFrame,
    settings: Settings,
    preset: str,
    start: date | None,
    end: date | None,
    *,
    initial_value: Decimal = DEFAULT_INITIAL,
    baselines: bool = True,
    replay: Replay | None = None,
    progress: Progress | None = None,
    perp_closes: Mapping[str, Mapping[date, Decimal]] | None = None,
) -> BacktestResult:
    """Backtest one preset (and its baselines) over [start, end] of `frame`."""
    return run_presets(frame, settings, [preset], start, end, initial_value=initial_value,
                       baselines=baselines, replay=replay, progress=progress,
                       perp_closes=perp_closes)[0]


def run_presets(frame: HistoryFrame, settings: Settings, presets: Sequence[str], start: date | None,
                end: date | None, *, initial_value: Decimal = DEFAULT_INITIAL, baselines: bool = True,
                replay: Replay | None = None, progress: Progress | None = None,
                perp_closes: Mapping[str, Mapping[date, Decimal]] | None = None) -> list[BacktestResult]:
    """Several presets (each with its baselines) over the same days, in one lockstep pass."""
    chosen = [preset_settings(settings, p) for p in presets]
    replay = replay or shared_replay(frame, settings, presets, perp_closes)
    days, notes = trading_days(replay, start, end)
    variants = VARIANTS if baselines else (STRATEGY,)
    results = run_many(replay, [(s, v) for s in chosen for v in variants], days, initial_value, progress)
    return by_preset(presets, chosen, variants, results, days, frame.source, notes)


def by_preset(presets: Sequence[str], chosen: Sequence[Settings], variants: Sequence[str],
              results: Sequence[RunResult], days: Sequence[date], source: str,
              notes: Sequence[str]) -> list[BacktestResult]:
    """Runs in (preset, variant) order put together as one result per preset."""
    it = iter(results)
    return [BacktestResult(preset=preset, title=s.strategy.title, start=days[0], end=days[-1],
                           source=source, runs={v: next(it) for v in variants}, notes=tuple(notes))
            for preset, s in zip(presets, chosen, strict=True)]


# ── presenting results ──────────────────────────────────────────────────────────────────────

TABLE_HEADERS = ("preset", "run", "final", "CAGR", "max DD", "Sharpe", "turnover", "fees",
                 "funding", "rebal.", "regimes")


def table_rows(result: BacktestResult) -> list[tuple[str, ...]]:
    """One row per run, formatted for a monospace table (chat, console, CLI)."""
    rows = []
    for variant, r in result.runs.items():
        perf = r.performance
        rows.append((result.preset if variant == STRATEGY else "", variant,
                     f"{r.final_value:,.0f}", f"{perf.cagr:+.1%}", f"{-perf.max_drawdown.depth:.1%}",
                     f"{perf.sharpe:.2f}", f"{perf.turnover:.1f}x", f"{r.fees:,.0f}", f"{r.funding:+,.0f}",
                     str(r.rebalances), r.regime_summary() if variant == STRATEGY else ""))
    return rows


def backtest_reply_data(
    result: BacktestResult,
) -> tuple[list[tuple[str, ...]], dict[str, list[tuple[date, float]]]]:
    """What `/backtest` shows: table rows (headers in TABLE_HEADERS) and curves for equity_chart."""
    curves = {f"{result.preset}" if v == STRATEGY else v: [(d, float(x)) for d, x in r.equity]
              for v, r in result.runs.items()}
    return table_rows(result), curves


def _money(x: Decimal) -> str:
    return str(x.quantize(Decimal("0.01")))


def run_json(r: RunResult) -> dict[str, Any]:
    perf = r.performance
    dd = perf.max_drawdown
    return {
        "final_value": _money(r.final_value), "total_return": perf.total_return, "cagr": perf.cagr,
        "volatility": perf.volatility, "sharpe": perf.sharpe,
        "max_drawdown": {"depth": dd.depth, "peak": dd.peak and dd.peak.isoformat(),
                         "trough": dd.trough and dd.trough.isoformat(),
                         "recovered": dd.recovered and dd.recovered.isoformat()},
        "turnover": perf.turnover, "traded": _money(r.traded), "fees": _money(r.fees),
        "slippage": _money(r.slippage), "funding": _money(r.funding),
        "futures_pnl": _money(r.futures_pnl), "rebalances": r.rebalances, "proposals": r.proposals,
        "orders": r.orders, "unfilled_orders": r.unfilled, "margin_calls": r.margin_calls,
        "triggers": dict(r.triggers), "regime_share": r.regime_share(), "notes": list(r.notes),
    }


def result_json(result: BacktestResult) -> dict[str, Any]:
    """Plain data for `--json`: money as strings to the cent, statistics as floats."""
    return {"preset": result.preset, "title": result.title, "start": result.start.isoformat(),
            "end": result.end.isoformat(), "source": result.source, "notes": list(result.notes),
            "runs": {v: run_json(r) for v, r in result.runs.items()}}
