"""The JSON codec: exact round trips of every domain record through real JSON text."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.codec import (
    day_to_str,
    dec_from,
    dec_to_str,
    dt_from,
    dt_to_str,
    json_dumps,
    json_loads,
    order_from_dict,
    order_to_dict,
    portfolio_from_dict,
    portfolio_to_dict,
    proposal_from_dict,
    proposal_to_dict,
    snapshot_from_dict,
    snapshot_to_dict,
    trigger_from_dict,
    trigger_to_dict,
)
from core.models import (
    AssetMarket,
    Close,
    FearGreed,
    FundingPrint,
    FutureQuote,
    MarketSnapshot,
    Order,
    PerpQuote,
    Portfolio,
    Position,
    Proposal,
    SpotQuote,
    Trigger,
)

# ── strategies ──────────────────────────────────────────────────────────────────────────────

decimals = st.decimals(allow_nan=False, allow_infinity=False)
offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
aware = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=offsets)
days = st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1))
text = st.text(max_size=20)
names = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=5)
dec_maps = st.dictionaries(names, decimals, max_size=4)

triggers = st.builds(
    Trigger,
    rule=text,
    asset=st.none() | names,
    explanation=text,
    values=st.dictionaries(text, text, max_size=3),
    state_from=st.none() | text,
    state_to=st.none() | text,
)
orders = st.builds(
    Order,
    market=st.sampled_from(["spot", "perp", "future"]),
    symbol=text,
    asset=names,
    side=st.sampled_from(["buy", "sell"]),
    amount=decimals,
    notional=decimals,
    limit_price=decimals,
    reason=text,
    leg=st.integers(min_value=0, max_value=20),
    est_fee=decimals,
    est_slippage=decimals,
    contract_size=decimals,
)
proposals = st.builds(
    Proposal,
    id=text,
    created_at=aware,
    expires_at=aware,
    strategy=text,
    triggers=st.lists(triggers, max_size=3).map(tuple),
    orders=st.lists(orders, max_size=3).map(tuple),
    weights_before=dec_maps,
    weights_after=dec_maps,
    net_futures_exposure_before=decimals,
    net_futures_exposure_after=decimals,
    value=decimals,
    est_fees=decimals,
    est_slippage=decimals,
    expected_carry_apr=st.none() | decimals,
    hurdle_apr=st.none() | decimals,
    warnings=st.lists(text, max_size=3).map(tuple),
    snapshot_id=st.none() | text,
    prices=dec_maps,
)
positions = st.builds(Position, symbol=text, contracts=decimals, contract_size=decimals)
portfolios = st.builds(Portfolio, balances=dec_maps, positions=st.lists(positions, max_size=3).map(tuple))
perps = st.builds(
    PerpQuote,
    symbol=text,
    mark=decimals,
    index=decimals,
    funding_rate=decimals,
    funding_interval_hours=decimals,
    timestamp=aware,
    funding_history=st.lists(st.builds(FundingPrint, time=aware, rate=decimals), max_size=3).map(tuple),
    next_funding_time=st.none() | aware,
    contract_size=decimals,
)
markets = st.builds(
    AssetMarket,
    asset=names,
    spot=st.none() | st.builds(SpotQuote, price=decimals, timestamp=aware),
    perp=st.none() | perps,
    futures=st.lists(
        st.builds(
            FutureQuote,
            symbol=text,
            price=decimals,
            expiry=aware,
            timestamp=aware,
            contract_size=decimals,
        ),
        max_size=2,
    ).map(tuple),
    closes=st.lists(st.builds(Close, day=days, price=decimals), max_size=3).map(tuple),
)
snapshots = st.builds(
    MarketSnapshot,
    as_of=aware,
    quote=names,
    assets=st.dictionaries(names, markets, max_size=2),
    fear_greed=st.none()
    | st.builds(
        FearGreed,
        value=st.integers(0, 100),
        timestamp=aware,
        history=st.lists(st.tuples(days, st.integers(0, 100)), max_size=3).map(tuple),
    ),
)


def through_json(d: dict) -> dict:
    """What a reader of the stored text gets back; plain `json.dumps` proves the dict needs no
    custom encoder."""
    json.dumps(d)
    return json_loads(json_dumps(d))


# ── round trips ─────────────────────────────────────────────────────────────────────────────


@given(proposals)
def test_a_proposal_survives_a_json_round_trip_exactly(p: Proposal) -> None:
    back = proposal_from_dict(through_json(proposal_to_dict(p)))
    assert back == p
    assert back.created_at.tzinfo is not None and back.expires_at.utcoffset() == timedelta(0)
    # Decimal equality ignores trailing zeros; the text must keep them too.
    assert [dec_to_str(o.amount) for o in back.orders] == [dec_to_str(o.amount) for o in p.orders]
    assert {k: str(v) for k, v in back.prices.items()} == {k: str(v) for k, v in p.prices.items()}


@given(orders)
def test_an_order_survives_a_json_round_trip_exactly(o: Order) -> None:
    back = order_from_dict(through_json(order_to_dict(o)))
    assert back == o
    assert str(back.limit_price) == str(o.limit_price)


@given(triggers)
def test_a_trigger_survives_a_json_round_trip(t: Trigger) -> None:
    assert trigger_from_dict(through_json(trigger_to_dict(t))) == t


@given(portfolios)
def test_a_portfolio_survives_a_json_round_trip_exactly(p: Portfolio) -> None:
    back = portfolio_from_dict(through_json(portfolio_to_dict(p)))
    assert back == p
    assert {k: str(v) for k, v in back.balances.items()} == {k: str(v) for k, v in p.balances.items()}


@given(snapshots)
def test_a_market_snapshot_survives_a_json_round_trip(s: MarketSnapshot) -> None:
    assert snapshot_from_dict(through_json(snapshot_to_dict(s))) == s


# ── formats ─────────────────────────────────────────────────────────────────────────────────


def test_decimals_are_strings_that_keep_trailing_zeros_and_exponents() -> None:
    for raw in ["1.50", "-0", "0.00010", "1E+3", "-123456789.123456789"]:
        assert dec_to_str(Decimal(raw)) == raw
        assert str(dec_from(dec_to_str(Decimal(raw)))) == raw


def test_a_float_is_refused_where_a_decimal_is_expected() -> None:
    with pytest.raises(ValueError, match="decimal string"):
        dec_from(0.1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not a decimal"):
        dec_from("ten")


@given(aware)
def test_datetimes_are_fixed_width_utc_text_that_sorts_like_time(t: datetime) -> None:
    s = dt_to_str(t)
    assert s.endswith("+00:00") and len(s) == len("2024-01-01T00:00:00.000000+00:00")
    assert dt_from(s) == t


@given(aware, aware)
def test_datetime_text_order_matches_time_order(a: datetime, b: datetime) -> None:
    assert (dt_to_str(a) < dt_to_str(b)) == (a < b)


def test_a_naive_datetime_is_refused_both_ways() -> None:
    with pytest.raises(ValueError, match="naive"):
        dt_to_str(datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="no UTC offset"):
        dt_from("2024-01-01T00:00:00")


def test_a_z_suffix_is_read_as_utc() -> None:
    assert dt_from("2024-03-01T08:00:00Z") == datetime(2024, 3, 1, 8, tzinfo=UTC)


def test_a_datetime_is_not_accepted_as_a_day() -> None:
    assert day_to_str(date(2024, 2, 29)) == "2024-02-29"
    with pytest.raises(TypeError):
        day_to_str(datetime(2024, 2, 29, tzinfo=UTC))


def test_json_dumps_writes_decimals_and_times_as_strings() -> None:
    text_ = json_dumps({"p": Decimal("1.10"), "t": datetime(2024, 1, 1, tzinfo=UTC), "d": date(2024, 1, 2)})
    assert json.loads(text_) == {
        "p": "1.10",
        "t": "2024-01-01T00:00:00.000000+00:00",
        "d": "2024-01-02",
    }
    with pytest.raises(TypeError, match="not JSON serializable"):
        json_dumps({"x": object()})


def test_optional_keys_may_be_missing_when_reading() -> None:
    o = order_from_dict(
        {
            "market": "spot",
            "symbol": "BTC/USDT",
            "asset": "BTC",
            "side": "buy",
            "amount": "0.1",
            "notional": "5000",
            "limit_price": "50000",
        }
    )
    assert (o.leg, o.est_fee, o.contract_size, o.reason) == (0, Decimal(0), Decimal(1), "")
    assert portfolio_from_dict({}) == Portfolio(balances={})
