"""Phone formatting: money, amounts, percentages, durations and times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatbot import format as fmt
from chatbot import parsing
from core.errors import CommandError

NOW = datetime(2025, 6, 2, 12, 5, tzinfo=UTC)


@pytest.mark.parametrize(("value", "text"), [
    (Decimal("12345.678"), "12,345.68"), (Decimal("-0.004"), "0.00"), (Decimal("-1234.5"), "−1,234.50"),
    (Decimal("250000"), "250,000"), (0, "0.00"),
])
def test_money(value, text):
    assert fmt.money(value) == text


@pytest.mark.parametrize(("value", "text"), [
    (Decimal("0.43333333"), "0.433333"), (Decimal("40000"), "40,000"), (Decimal("2.000"), "2"),
    (Decimal("0.00001234"), "0.00001234"), (Decimal("-1.5"), "−1.5"), (Decimal(0), "0"),
])
def test_amount(value, text):
    assert fmt.amount(value) == text


def test_percentages_and_points():
    assert fmt.pct(Decimal("0.1095")) == "11.0%"
    assert fmt.pct(Decimal("0.1095"), 2) == "10.95%"
    assert fmt.pct(Decimal("-0.02"), signed=True) == "−2.0%"
    assert fmt.pct(Decimal("0"), signed=True) == "+0.0%"
    assert fmt.pct(Decimal("-0.00001")) == "0.0%"  # no "−0.0%"
    assert fmt.pct(None) == "n/a"
    assert fmt.pp(Decimal("7")) == "+7.0" and fmt.pp(Decimal("-3.45")) == "−3.5"


def test_durations_and_times():
    assert fmt.span(timedelta(seconds=45)) == "45 s"
    assert fmt.span(timedelta(minutes=13, seconds=59)) == "13 min"
    assert fmt.span(timedelta(hours=2, minutes=30)) == "2 h 30 min"
    assert fmt.span(timedelta(days=3, hours=4)) == "3 d 4 h"
    assert fmt.ago(NOW - timedelta(minutes=3), NOW) == "3 min ago"
    assert fmt.ago(NOW, NOW) == "just now"
    assert fmt.clock(NOW, NOW) == "12:05 UTC"
    assert fmt.clock(NOW - timedelta(days=1), NOW) == "1 Jun 12:05 UTC"


def test_weights_line_is_largest_first_and_skips_zero():
    line = fmt.weights_line({"ETH": Decimal("0.16"), "BTC": Decimal("0.24"), "XRP": Decimal(0)})
    assert line == "BTC 24% · ETH 16%"


@given(st.decimals(min_value=-10**12, max_value=10**12, allow_nan=False, allow_infinity=False))
def test_money_and_amount_never_fail(x):
    assert fmt.money(x)
    assert fmt.amount(x)
    assert fmt.pct(x / 10**6)


@pytest.mark.parametrize(("text", "minutes"), [
    ("30m", 30), ("2h", 120), ("1d", 1440), ("1h30m", 90), ("45min", 45), ("1w", 10080), ("2 hours", 120),
])
def test_durations_parse(text, minutes):
    assert parsing.duration(text) == timedelta(minutes=minutes)


@pytest.mark.parametrize("text", ["", "h", "30", "2x", "1h 30m", "0m", "31d", "-1h", "1.5h"])
def test_bad_durations(text):
    with pytest.raises(CommandError):
        parsing.duration(text)


def test_ids_assets_and_commands_parse():
    assert parsing.proposal_id(" p-7f3k2a ") == "P-7F3K2A"
    assert parsing.proposal_id("7F3K2A") == "P-7F3K2A"
    assert parsing.asset("btc/usdt", ["BTC", "ETH"]) == "BTC"
    assert parsing.asset("ETHUSDT", ["BTC", "ETH"]) == "ETH"
    assert parsing.parse_command("／ｓｔａｔｕｓ") == parsing.Parsed("status", ())  # full-width keyboards
    assert parsing.parse_command("/Approve@PremiaBot P-1234") == parsing.Parsed("approve", ("P-1234",))
    assert parsing.action_to_parsed("approve:P-7F3K2A") == parsing.Parsed("approve", ("P-7F3K2A",))
    assert parsing.day("2024-03") == parsing.day("2024-03-01")


def test_an_execution_report_tells_the_futures_overlay_from_spot() -> None:
    from core.execution_report import ExecutionReport, LegFill

    d = Decimal
    fills = (LegFill(0, "BTC/USDT", "spot", "buy", d("0.1"), d("0.1"), d(60_000), d(6), d(0), "filled"),
             LegFill(1, "BTC/USDT:USDT", "perp", "sell", d("0.1"), d("0.05"), d(60_100), d(3), d(0),
                     "partially_filled"),
             LegFill(2, "ETH/USDT:USDT-261225", "future", "sell", d(1), d(0), None, d(0), None, "canceled"))
    report = ExecutionReport("P-ABC123", "partially_executed", fills, d(0), {}, d(0), fees=d(9))
    text, table = fmt.execution_parts(report, "USDT")
    assert table is not None
    assert [r[2] for r in table.rows] == ["BTC", "BTC perp", "ETH future"]
    assert text.startswith("Partly executed: 1 of 3 legs filled")
