"""The confctl app on the test database, reached over real HTTP semantics through httpx's ASGI transport."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from confctl.entry.app import create_app
from confctl.entry.settings import ApiKey, Settings
from tests.support.twilio_forms import ACCOUNT_SID, AUTH_TOKEN, PUBLIC_URL, T0

KEYS = {
    "admin": "admin-key-123456",
    "reader": "reader-key-123456",
    "controller": "control-key-123456",
}


class FixedClock:
    """A clock that always says T0, so repeated runs store identical facts."""

    def now(self) -> datetime:
        return T0


def settings() -> Settings:
    return Settings(
        database_url=None,  # the engine is given to the app
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        public_url=PUBLIC_URL,
        api_keys=[
            ApiKey(name="admin", key=KEYS["admin"], scopes=["read", "control", "supervise"]),
            ApiKey(name="reader", key=KEYS["reader"], scopes=["read"]),
            ApiKey(name="controller", key=KEYS["controller"], scopes=["control"]),
        ],
    )


@pytest.fixture
async def client(engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the app, authenticated as `admin` for the control API."""
    app = create_app(settings(), engine=engine, clock=FixedClock())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers={"Authorization": f"Bearer {KEYS['admin']}"}
    ) as c:
        yield c
