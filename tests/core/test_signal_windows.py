"""The fast signal paths give exactly what the plain definitions give.

Persistence rules read only their window of funding prints: the same Decimals as converting the
whole history and cutting it. (A replay's tables: tests/core/test_signal_tables.py.)
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from core.models import FundingPrint, PerpQuote
from core.signals import (
    funding_8h_series,
    funding_apr_series,
    funding_held_window,
    funding_window,
    held,
)
from core.strategy_config import Persistence

NOW = datetime(2025, 6, 2, 8, tzinfo=UTC)
RULES = [Persistence(), Persistence(mode="every"), Persistence(min_share=D("0.5"), min_prints=5)]


def _history(rng: random.Random, hours: list[int], n: int) -> list[FundingPrint]:
    """Prints back from NOW at a mix of intervals, with the odd irregular gap and a late print."""
    out, t = [], NOW + timedelta(hours=rng.choice([0, 0, 0, 4]))  # sometimes a print after now
    for _ in range(n):
        out.append(FundingPrint(t, D(f"{rng.gauss(0.0001, 0.0003):.8f}")))
        t -= timedelta(hours=rng.choice(hours), minutes=rng.choice([0, 0, 0, 1, 7]))
    return out[::-1]


def _perp(prints, interval=8) -> PerpQuote:
    return PerpQuote("BTC/USDT:USDT", D(1), D(1), prints[-1].rate if prints else D(0), D(interval), NOW,
                     prints)


def _cut(series, days):
    since = NOW - timedelta(days=days)
    return [v for v in series if since < v[0] <= NOW]


@pytest.mark.parametrize("seed", range(12))
def test_a_window_of_prints_is_the_whole_series_cut_to_the_window(seed):
    rng = random.Random(seed)
    prints = _history(rng, rng.choice([[8], [4], [8, 4], [1, 8, 12]]), rng.randint(0, 120))
    variants = [tuple(prints), list(prints), tuple(rng.sample(prints, len(prints)))]
    for history in variants:
        perp = _perp(history, rng.choice([4, 8]))
        full = {"apr": funding_apr_series(perp), "8h": funding_8h_series(perp)}
        for days in (1, 3, 7, 14):
            for unit in ("apr", "8h"):
                window = funding_window(perp, NOW, days, unit)
                assert window == _cut(full[unit], days)
                for rule in RULES:
                    judged = funding_held_window(perp, NOW, days, unit, rule)
                    for threshold in (D("-0.1"), D("0"), D("0.00005"), D("0.1095"), D("0.2")):
                        for direction in ("above", "below"):
                            assert judged.held(threshold, direction) == held(
                                full[unit], NOW, days, threshold, direction, rule)


def test_a_print_is_annualized_with_the_gap_to_the_print_before_its_window():
    # Prints every 4 hours: the first print of the window is 4-hourly too, read from the print
    # just outside the window.
    prints = tuple(FundingPrint(NOW - timedelta(hours=4 * k), D("0.0001")) for k in range(40, -1, -1))
    window = funding_window(_perp(prints, interval=8), NOW, 3, "apr")
    assert len(window) == 18 and {v for _, v in window} == {D("0.219")}


def test_holds_is_the_verdict_of_held():
    rng = random.Random(9)
    for _ in range(300):
        prints = _history(rng, [8, 4], rng.randint(0, 40))
        perp = _perp(tuple(prints))
        for rule in RULES:
            window = funding_held_window(perp, NOW, rng.choice([1, 3, 5]), "8h", rule)
            for threshold in (D("-0.0002"), D("0"), D("0.0001"), D("0.0003")):
                for direction in ("above", "below"):
                    assert window.holds(threshold, direction) == window.held(threshold, direction).held
