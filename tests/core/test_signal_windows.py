"""The fast signal paths give exactly what the plain definitions give.

Persistence rules read only their window of funding prints (converted once per snapshot), and
volatility reuses remembered pair returns across replayed days; both must be invisible in the
numbers: the same Decimals and floats as converting the whole history, or the list path.
"""

from __future__ import annotations

import itertools
import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D

import pytest

from core.models import Close, FundingPrint, PerpQuote
from core.signals import (
    funding_8h_series,
    funding_apr_series,
    funding_held_window,
    funding_window,
    held,
    log_returns,
    vol_ratio,
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


def _closes(rng: random.Random, n: int) -> tuple[Close, ...]:
    p, out = 100.0, []
    for i in range(n):
        p *= 1 + rng.gauss(0, 0.05)
        price = D(0) if rng.random() < 0.02 else D(f"{p:.6g}")
        out.append(Close(date(2021, 1, 1) + timedelta(days=i), price))
    return tuple(out)


@pytest.mark.parametrize("seed", range(4))
def test_remembered_pair_returns_give_the_same_volatility_as_the_list_path(seed):
    rng = random.Random(seed)
    series = _closes(rng, 300)
    for end in range(1, len(series), 3):
        for start in (max(0, end - 90), max(0, end - 40), 0):
            window = series[start:end]  # consecutive days' windows share their closes
            assert log_returns(window) == log_returns(list(window))
            for short, long in ((7, 30), (3, 10)):
                assert vol_ratio(window, short, long) == vol_ratio(list(window), short, long)


def test_pair_chains_match_windows_that_slide_jump_shrink_and_copy():
    from core.memo import PairChains

    rng = random.Random(3)
    series = list(range(1, 400))
    other = [x + 0 for x in series]  # equal values, some in other objects
    floats = [float(x) + 0.5 for x in series]  # new objects: identity decides, not equality
    chains = PairChains(lambda xs: [float(b) - float(a) for a, b in itertools.pairwise(xs)], limit=300)
    start, end = 0, 30
    for _ in range(2000):
        move = rng.random()
        if move < 0.6:
            start, end = start + 1, end + 1  # the next day
        elif move < 0.7:
            start = min(end - 1, start + rng.randint(1, 5))  # a shorter window
        elif move < 0.8:
            start, end = rng.randint(0, 300), 0
            end = start + rng.randint(0, 60)  # anywhere
        if end > len(series):
            start, end = 0, 30
        source = rng.choice([series, other, floats])
        window = tuple(source[start:end])
        expected = [float(b) - float(a) for a, b in itertools.pairwise(window)]
        assert chains.values(window) == expected


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
