"""Charts render real PNGs, survive empty data, and draw the documented examples from real data.

`python -m tests.chatbot.test_charts` re-renders docs/charts/*.png from the shared data.
"""

from __future__ import annotations

import asyncio
import struct
import sys
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from chatbot.charts import (
    SEED_002_THRESHOLDS,
    allocation_chart,
    basis_chart,
    equity_chart,
    funding_chart,
)
from core.history_csv import HistoryFrame, default_data_dir, load_history

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from the IHDR chunk, which a valid PNG has first."""
    assert data[:8] == PNG_SIGNATURE, "not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def assert_phone_png(data: bytes) -> None:
    assert png_size(data) == (960, 720)
    assert len(data) > 10_000, "suspiciously small: probably a blank image"


D = [date(2024, 1, 1) + timedelta(days=i) for i in range(60)]
T = [datetime(2024, 1, 1, tzinfo=UTC) + timedelta(hours=8 * i) for i in range(90)]


def test_allocation_chart() -> None:
    before = {"BTC": Decimal("0.52"), "ETH": Decimal("0.28"), "USDT": Decimal("0.20")}
    after = {"BTC": Decimal("0.40"), "ETH": Decimal("0.30"), "USDT": Decimal("0.30")}
    assert_phone_png(allocation_chart(before, after, after, "Rebalance"))
    assert_phone_png(allocation_chart(before, after, None, "No targets"))
    # A short futures book shows as a negative weight.
    assert_phone_png(
        allocation_chart({"BTC": Decimal(1)}, {"BTC": Decimal("0.7"), "BTC-PERP": Decimal("-0.3")}, None, "x")
    )


def test_funding_chart_from_rates_and_aprs() -> None:
    rates = [(t, Decimal("0.0001") * (1 + (i % 7) - 3)) for i, t in enumerate(T)]
    thresholds = {"enter": Decimal("0.10"), "exit": Decimal("0.05")}
    assert_phone_png(funding_chart(rates, thresholds, "BTC funding"))
    assert_phone_png(funding_chart(rates[:5], {}, "few prints", interval_hours=Decimal(4)))
    aprs = [(t, r * 1095) for t, r in rates]
    assert_phone_png(funding_chart(aprs, thresholds, "as APR", values="apr"))


def test_basis_and_equity_charts() -> None:
    series = [(d, Decimal(i - 20) / 100) for i, d in enumerate(D)]
    assert_phone_png(basis_chart(series, SEED_002_THRESHOLDS, "premium"))
    assert_phone_png(basis_chart(series, {**SEED_002_THRESHOLDS, "exit_below": Decimal("0.03")}, "x"))
    assert_phone_png(basis_chart(series, {}, "no bands"))
    curves = {
        "hold": [(d, 100.0 + i) for i, d in enumerate(D)],
        "mix": [(d, 100.0 - i % 9) for i, d in enumerate(D)],
    }
    assert_phone_png(equity_chart(curves, "Equity"))


@pytest.mark.parametrize(
    "render",
    [
        lambda: allocation_chart({}, {}, None, "Allocation"),
        lambda: funding_chart([], {"enter": Decimal("0.1")}, "Funding"),
        lambda: basis_chart([], SEED_002_THRESHOLDS, "Premium"),
        lambda: equity_chart({}, "Equity"),
        lambda: equity_chart({"empty": []}, "Equity"),
    ],
)
def test_empty_data_says_no_data(render) -> None:
    data = render()
    assert png_size(data) == (960, 720)
    # A "no data" card is mostly white: far smaller than any real chart.
    assert 2_000 < len(data) < 40_000


def test_single_point_does_not_crash() -> None:
    assert png_size(funding_chart([(T[0], Decimal("0.0001"))], {}, "one"))[0] == 960
    assert png_size(basis_chart([(D[0], Decimal("0.07"))], SEED_002_THRESHOLDS, "one"))[0] == 960
    assert png_size(equity_chart({"a": [(D[0], 100.0)]}, "one"))[0] == 960


async def test_renders_concurrently_in_threads() -> None:
    """Charts are free of shared state, so callers can render several with asyncio.to_thread."""
    series = [(d, Decimal(i) / 100) for i, d in enumerate(D)]
    alone = basis_chart(series, SEED_002_THRESHOLDS, "same")
    results = await asyncio.gather(
        *(asyncio.to_thread(basis_chart, series, SEED_002_THRESHOLDS, "same") for _ in range(6))
    )
    assert set(results) == {alone}


# ── the documented examples, from the real shared data ──────────────────────────────────────


def _daily_funding_apr(h: HistoryFrame, symbol: str) -> list[tuple[date, Decimal]]:
    """Annualized perp premium as DESIGN.md defines it: the day's mean funding × 3 × 365."""
    by_day: dict[date, list[Decimal]] = {}
    for p in h.funding[symbol]:
        by_day.setdefault(p.time.date(), []).append(p.rate)
    return [(d, sum(r) / len(r) * 1095) for d, r in sorted(by_day.items())]


def _mix_curve(h: HistoryFrame, weights: dict[str, float], start_value: float) -> list[tuple[date, float]]:
    """A book rebalanced to `weights` on the first of each month ("USDT" is cash)."""
    days = h.complete_days()
    units: dict[str, float] = {}
    curve = []
    for i, d in enumerate(days):
        prices = {a: float(h.closes[a][h.days.index(d)]) for a in h.assets}
        prices["USDT"] = 1.0
        value = sum(u * prices[a] for a, u in units.items()) if units else start_value
        if i == 0 or d.day == 1:
            units = {a: value * w / prices[a] for a, w in weights.items()}
        curve.append((d, value))
    return curve


def render_examples(data: Path, out: Path) -> dict[str, bytes]:
    """Render the four example charts of docs/charts.md from the real history into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    h = load_history(data, ["BTC", "ETH"], date(2021, 1, 1), date(2025, 6, 30))
    charts: dict[str, bytes] = {}

    # Allocation: a 40/30/30 book set on 2024-01-01, drifted by the Q1 2024 rally.
    t0, t1 = date(2024, 1, 1), date(2024, 3, 13)
    target = {"BTC": Decimal("0.40"), "ETH": Decimal("0.30"), "USDT": Decimal("0.30")}
    grow = {a: h.close(a, t1) / h.close(a, t0) for a in ("BTC", "ETH")} | {"USDT": Decimal(1)}
    held = {a: w * grow[a] for a, w in target.items()}
    total = sum(held.values())
    before = {a: v / total for a, v in held.items()}
    charts["allocation"] = allocation_chart(before, target, target, f"Rebalance back to target · {t1}")

    # Funding: Binance BTC perp through 2024 against seed 000's 10% / 5% hysteresis.
    btc = h.funding_between(
        "BTC/USDT:USDT", datetime(2024, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC)
    )
    charts["funding"] = funding_chart(
        [(p.time, p.rate) for p in btc],
        {"enter yield": Decimal("0.10"), "exit": Decimal("0.05")},
        "BTC funding APR · Binance 2024",
    )

    # Premium: the perpetual's annualized premium (daily mean funding APR) with seed 002's bands.
    charts["basis"] = basis_chart(
        _daily_funding_apr(h, "BTC/USDT:USDT"), SEED_002_THRESHOLDS, "BTC annualized premium · seed 002"
    )

    # Equity: buy-and-hold BTC against two monthly-rebalanced mixes.
    charts["equity"] = equity_chart(
        {
            "BTC hold": _mix_curve(h, {"BTC": 1.0}, 10_000),
            "60/40 BTC/USDT": _mix_curve(h, {"BTC": 0.6, "USDT": 0.4}, 10_000),
            "40/30/30 +ETH": _mix_curve(h, {"BTC": 0.4, "ETH": 0.3, "USDT": 0.3}, 10_000),
        },
        "Equity · 2021 – mid 2025, monthly rebalance",
    )
    for name, png in charts.items():
        (out / f"{name}.png").write_bytes(png)
    return charts


def test_examples_from_real_data(shared_data: Path, tmp_path: Path) -> None:
    charts = render_examples(shared_data, tmp_path)
    assert set(charts) == {"allocation", "funding", "basis", "equity"}
    for png in charts.values():
        assert_phone_png(png)


if __name__ == "__main__":
    target_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/charts")
    for chart in render_examples(default_data_dir(), target_dir):
        print(target_dir / f"{chart}.png")
