"""Helpers for the execution tests: settings, snapshots and hand-made proposals."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from core.config import Settings, settings_from_dict
from core.models import AssetMarket, MarketSnapshot, Order, PerpQuote, Proposal, SpotQuote

T0 = datetime(2025, 6, 17, 12, 0, tzinfo=UTC)
BTC, ETH = Decimal("100000"), Decimal("2500")
BPS = Decimal("0.0001")


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


def settings(**top: Any) -> Settings:
    """BTC and ETH on Binance, a 10,000 USDT paper book unless `paper` says otherwise."""
    raw: dict[str, Any] = {"assets": {"BTC": {}, "ETH": {"bucket": "altcoins"}}}
    raw.update(top)
    return settings_from_dict(raw)


def snapshot(prices: Mapping[str, Decimal] | None = None, at: datetime = T0, *,
             marks: Mapping[str, Decimal] | None = None, funding: Decimal = Decimal("0.0001"),
             quote_age: timedelta = timedelta(0)) -> MarketSnapshot:
    """Spot and perpetual quotes for BTC and ETH (marks default to the spot prices)."""
    prices = dict(prices or {"BTC": BTC, "ETH": ETH})
    marks = dict(marks or prices)
    ts = at - quote_age
    assets = {
        a: AssetMarket(a, spot=SpotQuote(p, ts),
                       perp=PerpQuote(f"{a}/USDT:USDT", marks[a], p, funding, Decimal(8), ts))
        for a, p in prices.items()
    }
    return MarketSnapshot(as_of=at, quote="USDT", assets=assets)


def order(leg: int, symbol: str, side: str, amount: str, price: Decimal, *, offset_bps: int = 5) -> Order:
    """An order as the planner makes it: notional at `price`, limit a few bps through it."""
    qty = Decimal(amount)
    market = "perp" if ":" in symbol else "spot"
    limit = price * (1 + offset_bps * BPS) if side == "buy" else price * (1 - offset_bps * BPS)
    return Order(market=market, symbol=symbol, asset=symbol.split("/")[0], side=side,  # type: ignore[arg-type]
                 amount=qty, notional=qty * price, limit_price=limit, reason="test", leg=leg,
                 est_fee=qty * price * Decimal("0.001"))


def proposal(pid: str, *orders: Order, at: datetime = T0, minutes: int = 15,
             prices: Mapping[str, Decimal] | None = None) -> Proposal:
    return Proposal(id=pid, created_at=at, expires_at=at + timedelta(minutes=minutes), strategy="test",
                    triggers=(), orders=tuple(orders), weights_before={}, weights_after={},
                    net_futures_exposure_before=Decimal(0), net_futures_exposure_after=Decimal(0),
                    value=Decimal(10_000), prices=dict(prices or {"BTC": BTC, "ETH": ETH}))


def basis_trade(pid: str, units: str = "0.02", price: Decimal = BTC, **kw: Any) -> Proposal:
    """Buy BTC spot and short the same amount of the perpetual: the delta-neutral basis trade."""
    return proposal(pid, order(0, "BTC/USDT", "buy", units, price),
                    order(1, "BTC/USDT:USDT", "sell", units, price), **kw)
