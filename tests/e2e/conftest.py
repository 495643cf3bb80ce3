"""The e2e fixture: confctl and the Twilio simulator wired to each other in-process (see support.py).

`stack` delivers callbacks as the `delivery` fixture says: in order after the REST answer (the default),
or as Twilio may: several at once and shuffled, or before the REST answer that caused them. A module opts
into all three with `pytestmark = every_delivery_mode`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.e2e.support import DELIVERY_MODES, Stack, build_stack

every_delivery_mode = pytest.mark.parametrize("delivery", list(DELIVERY_MODES), indirect=True)


@pytest.fixture
def delivery(request: pytest.FixtureRequest) -> str:
    """The name of the simulator's delivery mode (`DELIVERY_MODES`); `in-order` unless parametrized."""
    mode: str = getattr(request, "param", "in-order")
    return mode


@pytest.fixture
async def stack(engine: AsyncEngine, delivery: str) -> AsyncIterator[Stack]:
    """confctl on the test database and a simulator that shares its auth token."""
    async with build_stack(engine, delivery=DELIVERY_MODES[delivery]) as s:
        yield s
