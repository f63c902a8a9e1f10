"""The synthetic market: deterministic per seed, and shaped like the real one."""

from __future__ import annotations

import itertools
import statistics
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.history_csv import HistoryFrame
from core.simulated_market import simulate_history

START = date(2024, 1, 1)


def test_same_seed_same_history_other_seed_other_history() -> None:
    a = simulate_history(["BTC", "ETH"], START, 120, seed=7)
    b = simulate_history(["BTC", "ETH"], START, 120, seed=7)
    c = simulate_history(["BTC", "ETH"], START, 120, seed=8)
    assert a == b
    assert a.closes["BTC"] != c.closes["BTC"]
    assert a.source == "simulated:seed=7"


def test_shape_matches_a_loaded_history() -> None:
    h = simulate_history(["btc", "SOL", "NEWCOIN"], START, 90, seed=1)
    assert isinstance(h, HistoryFrame)
    assert h.assets == ("BTC", "SOL", "NEWCOIN")
    assert h.days[0] == START and h.days[-1] == START + timedelta(days=89)
    assert h.complete_days() == h.days
    assert set(h.funding) == {"BTC/USDT:USDT", "SOL/USDT:USDT", "NEWCOIN/USDT:USDT"}
    assert h.perp_symbol("SOL") == "SOL/USDT:USDT"
    assert sorted(h.fear_greed) == list(h.days)
    assert all(isinstance(p, Decimal) for p in h.closes["BTC"])


def test_funding_prints_every_eight_hours() -> None:
    h = simulate_history(["BTC"], START, 30, seed=3)
    prints = h.funding["BTC/USDT:USDT"]
    assert len(prints) == 30 * 3
    assert prints[0].time == datetime(2024, 1, 1, 0, tzinfo=UTC)
    gaps = {b.time - a.time for a, b in itertools.pairwise(prints)}
    assert gaps == {timedelta(hours=8)}
    assert all(abs(p.rate) <= Decimal("0.003") for p in prints)


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=0, max_value=2**32), st.integers(min_value=1, max_value=400))
def test_prices_positive_and_fear_greed_bounded(seed: int, days: int) -> None:
    h = simulate_history(["BTC", "DOGE"], START, days, seed)
    assert all(p is not None and p > 0 for column in h.closes.values() for p in column)
    assert all(0 <= v <= 100 and isinstance(v, int) for v in h.fear_greed.values())
    assert len(h.days) == days


def test_statistics_are_crypto_like() -> None:
    """Five years of BTC: funding mostly positive near 0.01%, F&G spans fear to greed."""
    h = simulate_history(["BTC"], START, 5 * 365, seed=11)
    rates = [float(p.rate) for p in h.funding["BTC/USDT:USDT"]]
    share_positive = sum(r > 0 for r in rates) / len(rates)
    assert 0.00005 < statistics.mean(rates) < 0.0002
    assert 0.75 < share_positive < 0.97
    fg = list(h.fear_greed.values())
    assert min(fg) < 25 and max(fg) > 75
    closes = [float(p) for p in h.closes["BTC"] if p is not None]
    daily = [b / a - 1 for a, b in itertools.pairwise(closes)]
    annual_vol = statistics.stdev(daily) * 365**0.5
    assert 0.3 < annual_vol < 1.2


def test_funding_follows_recent_returns() -> None:
    """After a week up, funding is higher than after a week down (the OU mean tracks R7)."""
    h = simulate_history(["BTC"], START, 4 * 365, seed=5)
    closes = [float(p) for p in h.closes["BTC"] if p is not None]
    day_mean = {}
    for p in h.funding["BTC/USDT:USDT"]:
        day_mean.setdefault(p.time.date(), []).append(float(p.rate))
    ups, downs = [], []
    for i in range(7, len(closes) - 1):
        r7 = closes[i] / closes[i - 7] - 1
        nxt = statistics.mean(day_mean[h.days[i + 1]])
        (ups if r7 > 0.05 else downs if r7 < -0.05 else []).append(nxt)
    assert statistics.mean(ups) > statistics.mean(downs)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        simulate_history(["BTC"], START, 0, seed=1)
    with pytest.raises(ValueError, match="at least one asset"):
        simulate_history([], START, 10, seed=1)
