"""Tests of the SQLite store (`core.store`), one file a subject; what they share is here.

The `store` (in memory) and `db_path` (a file not yet created) fixtures are in `conftest.py`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from core.models import Order, Proposal, Trigger

T0 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


def make_proposal(pid: str = "P-1", created_at: datetime = T0, ttl: timedelta = 15 * MIN) -> Proposal:
    return Proposal(
        id=pid,
        created_at=created_at,
        expires_at=created_at + ttl,
        strategy="balanced-aggression",
        triggers=(
            Trigger(
                rule="drift",
                asset="BTC",
                explanation="BTC is 47.2% against a 40% target (band ±5)",
                values={"weight": "0.472", "target": "0.40"},
                state_from="inside",
                state_to="above",
            ),
        ),
        orders=(
            Order(
                market="spot",
                symbol="BTC/USDT",
                asset="BTC",
                side="sell",
                amount=Decimal("0.14400"),
                notional=Decimal("7200.00"),
                limit_price=Decimal("49975.0"),
                reason="trim BTC to target",
                est_fee=Decimal("7.2"),
            ),
        ),
        weights_before={"BTC": Decimal("0.472"), "USDT": Decimal("0.528")},
        weights_after={"BTC": Decimal("0.400"), "USDT": Decimal("0.600")},
        net_futures_exposure_before=Decimal("0"),
        net_futures_exposure_after=Decimal("0"),
        value=Decimal("100000.00"),
        est_fees=Decimal("7.2"),
        snapshot_id="S-0123456789abcdef",
        prices={"BTC": Decimal("50000.10")},
    )
