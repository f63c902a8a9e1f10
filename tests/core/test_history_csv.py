"""Readers of the derived history CSVs and HistoryFrame, on small fixtures and on the real data."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from core.errors import FeedError, PremiaError
from core.history_csv import (
    FUNDING_FILE,
    HistoryFrame,
    detect_kind,
    load_history,
    read_basis,
    read_fear_greed,
    read_funding,
    read_prices,
)
from core.models import FundingPrint

PRICES = """timestamp_utc,symbol,open,high,low,close,volume_base,volume_quote,trade_count
2024-01-01T00:00:00Z,BTC/USDT,1,1,1,42283.58,1,1,1
2024-01-01T00:00:00Z,ETH/USDT,1,1,1,2352.04,1,1,1
2024-01-02T00:00:00Z,BTC/USDT,1,1,1,44179.55,1,1,1
2024-01-03T00:00:00Z,BTC/USDT,1,1,1,42700.00,1,1,1
2024-01-03T00:00:00Z,ETH/USDT,1,1,1,2210.12,1,1,1
"""
FUNDING = """timestamp_utc,exchange,symbol,funding_rate,source
2024-01-01T16:00:00Z,binance,BTC/USDT:USDT,0.0003,x
2024-01-01T00:00:00Z,binance,BTC/USDT:USDT,0.0001,x
2024-01-01T08:00:00Z,binance,BTC/USDT:USDT,-2.5e-05,x
2024-01-01T08:00:00Z,bybit,BTC/USDT:USDT,0.0002,x
2024-01-04T00:00:00Z,binance,BTC/USDT:USDT,0.0009,x
"""
FEAR_GREED = """timestamp_utc,value,classification,source
2024-01-01T00:00:00Z,65,Greed,x
2024-01-02T00:00:00Z,71,Greed,x
2026-02-13T00:00:00Z,9,,x
"""
BASIS = """timestamp_utc,symbol,spot_close,perp_close,basis_pct,perp_source
2024-01-10T00:00:00Z,BTC/USDT,46000,46046,0.1,x
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    derived = tmp_path / "derived"
    derived.mkdir()
    (derived / "prices_daily_clean.csv").write_text(PRICES)
    (derived / "funding_rates_clean.csv").write_text(FUNDING)
    (derived / "fear_greed_daily_clean.csv").write_text(FEAR_GREED)
    (derived / "perp_spot_basis_daily.csv").write_text(BASIS)
    return tmp_path


def test_readers_yield_typed_tuples(folder: Path) -> None:
    d = folder / "derived"
    assert next(read_prices(d / "prices_daily_clean.csv")) == (
        "BTC",
        date(2024, 1, 1),
        Decimal("42283.58"),
    )
    assert [a for a, _, _ in read_prices(d / "prices_daily_clean.csv", ["eth"])] == ["ETH", "ETH"]
    ex, sym, when, rate = list(read_funding(d / "funding_rates_clean.csv"))[2]
    assert (ex, sym, rate) == ("binance", "BTC/USDT:USDT", Decimal("-0.000025"))
    assert when == datetime(2024, 1, 1, 8, tzinfo=UTC) and when.utcoffset() is not None
    assert len(list(read_funding(d / "funding_rates_clean.csv", exchange="bybit"))) == 1
    assert list(read_fear_greed(d / "fear_greed_daily_clean.csv"))[-1] == (
        date(2026, 2, 13),
        9,
        "Extreme Fear",
    )
    asset, day, spot, perp, basis = next(read_basis(d / "perp_spot_basis_daily.csv"))
    assert (asset, day, spot, perp, basis) == (
        "BTC",
        date(2024, 1, 10),
        46000,
        46046,
        Decimal("0.001"),
    )


def test_detect_kind(folder: Path) -> None:
    d = folder / "derived"
    kinds = {p.name: detect_kind(p) for p in d.iterdir()}
    assert kinds == {
        "prices_daily_clean.csv": "prices",
        "funding_rates_clean.csv": "funding",
        "fear_greed_daily_clean.csv": "fear_greed",
        "perp_spot_basis_daily.csv": "basis",
    }
    other = folder / "other.csv"
    other.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(FeedError, match="unknown history header"):
        detect_kind(other)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("2024-01-01T00:00:00Z,binance,BTC/USDT:USDT,abc,x\n", "line 3, column 'funding_rate'"),
        ("2024-01-01 00:00,binance,BTC/USDT:USDT,0.1,x\n", "line 3, column 'timestamp_utc'"),
        ("2024-01-01T00:00:00+03:00,binance,BTC/USDT:USDT,0.1,x\n", "in UTC"),
        ("2024-01-01T00:00:00Z,binance\n", "line 3: 2 columns"),
        ("2024-01-01T00:00:00Z,binance,BTC/USDT:USDT,NaN,x\n", "finite"),
    ],
)
def test_malformed_rows_name_file_line_and_column(tmp_path: Path, text: str, where: str) -> None:
    path = tmp_path / "f.csv"
    path.write_text(
        FUNDING.splitlines()[0] + "\n2024-01-01T00:00:00Z,binance,BTC/USDT:USDT,0,x\n" + text
    )
    with pytest.raises(FeedError) as err:
        list(read_funding(path))
    assert str(path) in str(err.value) and where in str(err.value)
    assert isinstance(err.value, PremiaError)


def test_bad_values_and_headers(tmp_path: Path) -> None:
    fg = tmp_path / "fg.csv"
    fg.write_text("timestamp_utc,value,classification,source\n2024-01-01T00:00:00Z,101,Greed,x\n")
    with pytest.raises(FeedError, match=r"column 'value'.*0\.\.100"):
        list(read_fear_greed(fg))
    with pytest.raises(FeedError, match="line 1: expected a prices header"):
        list(read_prices(fg))
    with pytest.raises(FeedError, match="cannot open"):
        list(read_prices(tmp_path / "missing.csv"))


def test_load_history_aligns_and_filters(folder: Path) -> None:
    h = load_history(folder, ["BTC", "ETH"], date(2024, 1, 1), date(2024, 1, 3))
    assert h.days == (date(2024, 1, 1), date(2024, 1, 2), date(2024, 1, 3))
    assert h.closes["ETH"] == (Decimal("2352.04"), None, Decimal("2210.12"))
    assert h.complete_days() == (date(2024, 1, 1), date(2024, 1, 3))
    assert [c.price for c in h.series("BTC", until=date(2024, 1, 2))] == [
        Decimal("42283.58"),
        Decimal("44179.55"),
    ]
    # Sorted by time, only binance, and the 2024-01-04 print is outside the range.
    rates = [p.rate for p in h.funding["BTC/USDT:USDT"]]
    assert rates == [Decimal("0.0001"), Decimal("-0.000025"), Decimal("0.0003")]
    assert h.perp_symbol("btc") == "BTC/USDT:USDT" and h.perp_symbol("ETH") is None
    window = h.funding_between(
        "BTC/USDT:USDT", datetime(2024, 1, 1, 8, tzinfo=UTC), datetime(2024, 1, 1, 16, tzinfo=UTC)
    )
    assert [p.rate for p in window] == [Decimal("-0.000025")]
    assert dict(h.fear_greed) == {date(2024, 1, 1): 65, date(2024, 1, 2): 71}
    assert h.close("BTC", date(2023, 12, 31)) is None
    with pytest.raises(TypeError):
        h.closes["BTC"] = ()  # type: ignore[index]


def test_history_frame_rejects_misaligned_columns() -> None:
    with pytest.raises(ValueError, match="2 rows for 1 days"):
        HistoryFrame((date(2024, 1, 1),), {"BTC": (Decimal(1), Decimal(2))}, {}, {})
    frame = HistoryFrame(
        (), {}, {"X/USDT:USDT": (FundingPrint(datetime(2024, 1, 1, tzinfo=UTC), Decimal(0)),)}, {}
    )
    assert frame.start is None and frame.assets == ()


def test_load_history_rejects_reversed_range(folder: Path) -> None:
    with pytest.raises(FeedError, match="before start"):
        load_history(folder, ["BTC"], date(2024, 2, 1), date(2024, 1, 1))


# ── the real shared data ────────────────────────────────────────────────────────────────────


def test_binance_btc_funding_matches_published_figures(shared_data: Path) -> None:
    """Mean 8h rate 2019-09-01..2025-06-30 ≈ 0.012% (≈13.1% APR), ≈86.9% of prints positive."""
    lo, hi = datetime(2019, 9, 1, tzinfo=UTC), datetime(2025, 7, 1, tzinfo=UTC)
    rates = [
        rate
        for _, _, when, rate in read_funding(
            shared_data / "derived" / FUNDING_FILE, "binance", ["BTC/USDT:USDT"]
        )
        if lo <= when < hi
    ]
    mean = sum(rates, Decimal(0)) / len(rates)
    apr = mean * 3 * 365
    positive = sum(1 for r in rates if r > 0) / len(rates)
    figures = (
        f"n={len(rates)} mean={mean * 100:.5f}%/8h apr={apr * 100:.2f}% positive={positive:.2%}"
    )
    assert Decimal("0.000110") <= mean <= Decimal("0.000130"), figures
    assert Decimal("0.125") <= apr <= Decimal("0.137"), figures
    assert 0.85 <= positive <= 0.89, figures
    print(figures)


def test_load_real_history(shared_data: Path) -> None:
    h = load_history(shared_data, ["BTC", "ETH", "SOL"], date(2021, 1, 1), date(2021, 12, 31))
    assert len(h.days) == 365 and h.complete_days() == h.days
    assert h.close("BTC", date(2021, 11, 10)) is not None
    # Three settled prints a day, all in 2021, for BTC and ETH; no Binance SOL history before 2025.
    assert len(h.funding["BTC/USDT:USDT"]) == 365 * 3
    assert set(h.funding) == {"BTC/USDT:USDT", "ETH/USDT:USDT"}
    assert len(h.fear_greed) == 365 and all(0 <= v <= 100 for v in h.fear_greed.values())
    for kind, name in [
        ("prices", "prices_daily_clean.csv"),
        ("basis", "perp_spot_basis_daily.csv"),
    ]:
        assert detect_kind(shared_data / "derived" / name) == kind
