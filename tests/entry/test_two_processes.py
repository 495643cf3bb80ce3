"""Two service processes sharing one database handle callbacks of the same conference at once."""

from __future__ import annotations

import asyncio
import random

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from confctl.adapters.database import create_engine
from confctl.entry.app import create_app
from tests.entry.conftest import KEYS, FixedClock, settings
from tests.support.twilio_forms import post_signed, whole_call


async def test_concurrent_callbacks_on_two_apps_lose_nothing(engine: AsyncEngine, database_url: str) -> None:
    """Callbacks, each three times, spread over two apps with their own engines at once: one event each, right state."""
    other_engine = create_engine(database_url, pool_size=5)
    apps = [create_app(settings(), engine=engine, clock=FixedClock()),
            create_app(settings(), engine=other_engine, clock=FixedClock())]
    headers = {"Authorization": f"Bearer {KEYS['admin']}"}
    clients = [httpx.AsyncClient(transport=httpx.ASGITransport(app=a), base_url="http://t", headers=headers)
               for a in apps]
    try:
        calls = whole_call("CA" + "4" * 32, "CA" + "5" * 32, "CF" + "6" * 32)
        room = "room-CA" + "4" * 32
        await post_signed(clients[0], calls[0].path, calls[0].params)  # the voice request comes first
        rng = random.Random(7)
        deliveries = [(rng.choice(clients), cb) for cb in calls[1:] * 3]  # every callback three times
        rng.shuffle(deliveries)
        responses = await asyncio.gather(*(post_signed(c, cb.path, cb.params) for c, cb in deliveries))
        assert {r.status_code for r in responses} == {204}
        conference = (await clients[1].get(f"/v1/conferences/{room}")).json()
        events = (await clients[0].get(f"/v1/conferences/{room}/events")).json()["items"]
    finally:
        for client in clients:
            await client.aclose()
        await other_engine.dispose()
    assert len(events) == len(calls)
    assert [e["version"] for e in events] == list(range(1, len(calls) + 1))
    assert conference["status"] == "completed" and conference["version"] == len(calls)
    assert {p["label"]: p["status"] for p in conference["participants"]} == {"customer": "left", "agent-alice": "left"}
