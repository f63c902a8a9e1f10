"""A replay's signal tables give exactly what the signal functions work out from a window's items.

Every replayed day's closes and funding prints are windows of tables built once for the whole
history; the same questions asked of plain tuples of the same items (as a live snapshot carries
them) are worked out on demand. Both must give the same Decimals, day by day.
"""

from __future__ import annotations

import copy
import dataclasses
import pickle
import random
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal as D

import pytest

from core import signal_tables
from core.history_csv import HistoryFrame, load_history
from core.models import FundingPrint, MarketSnapshot
from core.replay import Replay
from core.signal_tables import _decimal
from core.signals import (
    PrintWindow,
    ReplayedAssets,
    SeriesWindow,
    funding_held_window,
    funding_window,
    vol_ratio,
    vol_ratios,
)
from core.strategy_config import Persistence
from tests.backtest.helpers import make_settings

RULES = (Persistence(), Persistence(mode="every"), Persistence(min_share=D("0.5"), min_prints=5))
WINDOWS = ((1, "apr"), (3, "apr"), (3, "8h"), (7, "apr"), (14, "apr"))
VOLS = ((7, 30), (3, 10), (2, 5))


def _plain(snap: MarketSnapshot) -> MarketSnapshot:
    """The snapshot with its windows as plain tuples: what a live feed delivers."""
    assets = {}
    for asset, m in snap.assets.items():
        perp = m.perp and dataclasses.replace(m.perp, funding_history=tuple(m.perp.funding_history))
        assets[asset] = dataclasses.replace(m, perp=perp, closes=tuple(m.closes))
    return dataclasses.replace(snap, assets=assets)


def _exact(answer):
    """An answer with its Decimals as strings: Decimal("0.10") == Decimal("0.1"), but results
    must print the same too."""
    if isinstance(answer, D):
        return str(answer)
    if isinstance(answer, PrintWindow):
        return [_exact(v) for v in answer.values], _exact(answer.mean), answer.complete
    if isinstance(answer, list):
        return [(t, str(v)) for t, v in answer]
    if isinstance(answer, Mapping):
        return {k: _exact(v) for k, v in answer.items()}
    assert answer is None
    return None


def _same_answers(replay: Replay, days, windows=WINDOWS, rules=RULES, vols=VOLS) -> int:
    """Assert every day's table answers equal the on-demand ones; the number of windows judged."""
    judged = 0
    for day in days:
        snap = replay.snapshot(day)
        plain = _plain(snap)
        assert isinstance(snap.assets, ReplayedAssets) and not isinstance(plain.assets, ReplayedAssets)
        for short, long in vols:
            assert _exact(vol_ratios(snap, short, long)) == _exact(vol_ratios(plain, short, long))
        for asset, m in snap.assets.items():
            live = plain.assets[asset]
            assert not isinstance(live.closes, SeriesWindow)
            for short, long in vols:
                assert _exact(vol_ratio(m.closes, short, long)) == _exact(vol_ratio(live.closes, short, long))
            if m.perp is None:
                continue
            for hold, unit in windows:
                assert _exact(funding_window(m.perp, snap.as_of, hold, unit)) == _exact(
                    funding_window(live.perp, snap.as_of, hold, unit))
                for rule in rules:
                    table = funding_held_window(m.perp, snap.as_of, hold, unit, rule)
                    live_window = funding_held_window(live.perp, snap.as_of, hold, unit, rule)
                    assert table.rule == rule and _exact(table) == _exact(live_window)
                    judged += 1
    return judged


@pytest.mark.slow
def test_every_day_of_2020_2026_answers_as_the_plain_functions(shared_data):
    assets = ["BTC", "ETH", "BNB", "XRP", "ADA"]
    settings = make_settings({a: {"bucket": "majors"} for a in assets})
    history = load_history(shared_data, assets, date(2020, 1, 1), date(2026, 12, 31))
    replay = Replay(history, settings, funding_days=16, closes_days=61)
    days = replay.trading_days()
    assert len(days) > 2000
    replay.prepare(days, [settings])
    judged = _same_answers(replay, days, windows=((3, "apr"), (3, "8h"), (14, "apr")), rules=RULES[:1],
                           vols=((7, 30),))
    assert judged > 3 * 5000  # asset-days with a perpetual (funding history starts later for some)


def _messy_frame(rng: random.Random, n: int = 100) -> HistoryFrame:
    """Closes with missing days and the odd zero; prints at mixed intervals with gaps and restarts."""
    start = date(2024, 1, 1)
    days = tuple(start + timedelta(days=i) for i in range(n))
    closes = {}
    for asset in ("BTC", "ETH"):
        p, column = 100.0, []
        for i in range(n):
            p *= 1 + rng.gauss(0, 0.04)
            if i < rng.randint(0, 20) or rng.random() < 0.08:
                column.append(None)  # not listed yet, or a missing day
            else:
                column.append(D(0) if rng.random() < 0.01 else D(f"{p:.6g}"))
        closes[asset] = tuple(column)
    funding = {}
    for asset in ("BTC", "ETH"):
        t = datetime.combine(start, time(), UTC) + timedelta(hours=rng.choice([0, 3]))
        end = datetime.combine(days[-1], time(), UTC) + timedelta(days=1)
        prints = []
        while t < end:
            if rng.random() < 0.01:
                t += timedelta(days=rng.randint(1, 4))  # the feed stopped for a while
            prints.append(FundingPrint(t, D(f"{rng.gauss(0.0001, 0.0004):.8f}")))
            t += timedelta(hours=rng.choice([8] * 12 + [4, 4, 1, 12]), minutes=rng.choice([0, 0, 0, 2]))
        funding[f"{asset}/USDT:USDT"] = tuple(prints)
    return HistoryFrame(days, closes, funding, dict.fromkeys(days, 50), source="test")


@pytest.mark.parametrize("seed", range(4))
def test_a_messy_history_answers_as_the_plain_functions(seed):
    frame = _messy_frame(random.Random(seed))
    settings = make_settings()
    for funding_days, closes_days in ((16, 61), (5, 20), (45, 90)):
        replay = Replay(frame, settings, funding_days=funding_days, closes_days=closes_days)
        if seed % 2:
            replay.prepare(frame.days, [settings])
        assert _same_answers(replay, frame.days, rules=RULES[seed % 3:][:2]) > 0


def test_volatilities_near_a_rounding_edge_are_worked_out_from_the_closes(monkeypatch):
    # A margin this wide sends every volatility to the plain function: the same answers again.
    monkeypatch.setattr(signal_tables, "ROUNDING_MARGIN", 0.5)
    frame = _messy_frame(random.Random(5))
    replay = Replay(frame, make_settings(), funding_days=16, closes_days=61)
    _same_answers(replay, frame.days, windows=(), rules=())


def test_the_first_print_of_a_day_takes_the_quotes_interval_as_a_live_snapshot_does():
    # 4-hourly prints until Jan 6 02:00, then 8-hourly. Jan 7's snapshot holds two days of
    # prints: the first, at Jan 6 02:00, came 4 h after the one before it, but with nothing
    # before it in the snapshot its interval is the quote's (8 h), as for a live snapshot.
    start = datetime(2024, 1, 1, 2, tzinfo=UTC)
    times = [start + timedelta(hours=4 * k) for k in range(31)]
    times += [times[-1] + timedelta(hours=8 * k) for k in range(1, 30)]
    prints = tuple(FundingPrint(t, D("0.0001")) for t in times)
    days = tuple(date(2024, 1, 1) + timedelta(days=i) for i in range(12))
    frame = HistoryFrame(days, {"BTC": (D(100),) * 12, "ETH": (D(10),) * 12}, {"BTC/USDT:USDT": prints},
                         {}, source="test")
    replay = Replay(frame, make_settings(), funding_days=2, closes_days=61)
    snap = replay.snapshot(date(2024, 1, 7))
    perp = snap.assets["BTC"].perp
    assert perp.funding_history[0].time == times[30] and perp.funding_interval_hours == 8
    window = funding_window(perp, snap.as_of, 3, "apr")
    assert [v for _, v in window] == [D("0.1095")] * 6
    assert _same_answers(replay, days) > 0


def test_prints_out_of_time_order_are_worked_out_on_demand():
    rng = random.Random(4)
    frame = _messy_frame(rng, 60)
    shuffled = {s: tuple(rng.sample(p, len(p))) for s, p in frame.funding.items()}
    frame = dataclasses.replace(frame, funding=shuffled)
    replay = Replay(frame, make_settings(), funding_days=16, closes_days=61)
    perp = next(m.perp for d in frame.days[20:] for m in replay.snapshot(d).assets.values() if m.perp)
    assert not isinstance(perp.funding_history, SeriesWindow)
    assert _same_answers(replay, frame.days) > 0


def test_a_prepared_replay_has_every_snapshot_and_they_are_the_ones_built_day_by_day():
    frame = _messy_frame(random.Random(7), 80)
    settings = make_settings()
    prepared, lazy = Replay(frame, settings), Replay(frame, settings)
    prepared.prepare(frame.days, [settings])
    assert set(prepared._cache) == set(frame.days)
    for day in frame.days:
        snap = prepared.snapshot(day)
        assert snap is prepared.snapshot(day)  # every run shares the same objects
        assert snap == lazy.snapshot(day)


def test_a_pickled_or_copied_snapshot_is_a_plain_one_with_the_same_answers():
    frame = _messy_frame(random.Random(2), 80)
    replay = Replay(frame, make_settings())
    snap = replay.snapshot(frame.days[-1])
    vol_ratios(snap)  # an answer kept with the snapshot
    for other in (pickle.loads(pickle.dumps(snap)), copy.deepcopy(snap), copy.copy(snap)):
        assert other == snap
        assert type(other.assets) is dict or other.assets is snap.assets  # a shallow copy shares them
        for asset, m in other.assets.items():
            assert m.closes == snap.assets[asset].closes
            if other.assets is not snap.assets:
                assert type(m.closes) is tuple
        assert _exact(vol_ratios(other)) == _exact(vol_ratios(snap))


def test_a_volatility_is_turned_into_the_decimal_realized_vol_builds():
    rng = random.Random(1)
    values = [0.0, 1.0, 2.0, 10.0, 0.5, 1e-5, 3e-11, 0.12345678905, 123.45678901234]
    values += [rng.uniform(0, 3) for _ in range(20_000)] + [rng.uniform(0, 1e-4) for _ in range(2_000)]
    values += [round(rng.uniform(0, 2), rng.randint(0, 10)) for _ in range(2_000)]
    for v in values:
        expected = D(str(round(v, 10)))
        assert _decimal(v) == expected and str(_decimal(v)) == str(expected), v
