"""Fixtures: the loopback exchange with its order desk, and a live-mode rig on it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.execution.loopback import Rig, make_rig
from tests.fakes.exchange_orders import OrderDesk
from tests.fakes.exchange_server import FakeExchange


@pytest.fixture
def desk(exchange: FakeExchange) -> OrderDesk:
    desk = OrderDesk(exchange)
    desk.fund(spot={"USDT": "10000"}, futures={"USDT": "5000"})
    return desk


@pytest.fixture
async def rig(exchange: FakeExchange, desk: OrderDesk) -> AsyncIterator[Rig]:
    rig = await make_rig(exchange, desk)
    yield rig
    await rig.close()
