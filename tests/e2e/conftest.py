"""The e2e fixture: confctl and the Twilio simulator wired to each other in-process (see support.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.e2e.support import Stack, build_stack


@pytest.fixture
async def stack(engine: AsyncEngine) -> AsyncIterator[Stack]:
    """confctl on the test database and a simulator that shares its auth token."""
    async with build_stack(engine) as s:
        yield s
