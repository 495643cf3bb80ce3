"""Live updates over real HTTP: per-conference and global SSE feeds, resuming, NOTIFY across processes, errors.

The feeds poll the store only every 60 s here, so an event that arrives within seconds was delivered by a
PostgreSQL NOTIFY waking the subscriber.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from confctl.adapters.database import create_engine
from confctl.entry.app import create_app
from tests.entry.conftest import KEYS, FixedClock, settings
from tests.support.sse import Message, live_server, open_stream, parse
from tests.support.twilio_forms import Callback, conference_event, post_signed, voice, whole_call

CUSTOMER, AGENT, CONF_SID = "CA" + "1" * 32, "CA" + "2" * 32, "CF" + "3" * 32
ROOM = f"room-{CUSTOMER}"
OTHER = "CA" + "7" * 32
ADMIN = {"Authorization": f"Bearer {KEYS['admin']}"}


@dataclass
class Live:
    """confctl behind a real uvicorn server, and a client on it."""

    app: FastAPI
    client: httpx.AsyncClient

    async def deliver(self, *callbacks: Callback) -> None:
        for callback in callbacks:
            response = await post_signed(self.client, callback.path, callback.params)
            assert response.status_code in (200, 204), response.text

    async def history(self, conference_id: str) -> list[dict[str, Any]]:
        response = await self.client.get(f"/v1/conferences/{conference_id}/events", params={"limit": 1000})
        items: list[dict[str, Any]] = response.json()["items"]
        return items


def make_app(engine: AsyncEngine, **overrides: Any) -> FastAPI:
    return create_app(settings().model_copy(update={"sse_poll_s": 60.0, **overrides}), engine=engine,
                      clock=FixedClock())


@pytest.fixture
async def live(engine: AsyncEngine) -> AsyncIterator[Live]:
    app = make_app(engine)
    try:
        async with live_server(app) as url, httpx.AsyncClient(base_url=url, headers=ADMIN, timeout=10) as client:
            yield Live(app, client)
    finally:
        await app.state.container.live.aclose()


def ids(messages: list[Message]) -> list[int]:
    return [int(m.id or "0") for m in messages]


async def test_conference_events_arrive_live_as_they_are_stored(live: Live) -> None:
    """The feed replays the conference's history, then each new event, shaped like /events plus conference_id."""
    await live.deliver(voice(CUSTOMER))
    async with open_stream(live.client, f"/v1/conferences/{ROOM}/stream") as feed:
        hint = await feed.next()
        assert hint.retry is not None and hint.retry > 0
        (created,) = await feed.events(1)
        assert (created.id, created.event) == ("1", "conference.created")
        await live.deliver(conference_event(ROOM, CONF_SID, 1, "participant-join", call_sid=CUSTOMER,
                                            label="customer", end_on_exit=True))
        (joined,) = await feed.events(1)
        assert (joined.id, joined.event) == ("2", "participant.joined")
        await live.deliver(voice(OTHER))  # another conference: not on this feed
        await feed.nothing_for(0.3)
    history = await live.history(ROOM)
    assert [m.json() for m in (created, joined)] == [item | {"conference_id": ROOM} for item in history]
    assert joined.json()["actor"] == "twilio" and joined.json()["data"]


async def test_last_event_id_resumes_with_no_gap_and_no_repeat(live: Live) -> None:
    """A client that reconnects with Last-Event-ID gets exactly the events after it, also those stored meanwhile."""
    calls = whole_call(CUSTOMER, AGENT, CONF_SID)
    await live.deliver(*calls[:4])
    path = f"/v1/conferences/{ROOM}/stream"
    async with open_stream(live.client, path) as feed:
        first = await feed.events(4)
    await live.deliver(*calls[4:])  # stored while the client is away
    async with open_stream(live.client, path, headers={"Last-Event-ID": first[-1].id or ""}) as feed:
        rest = await feed.events(len(calls) - 4)
        await feed.nothing_for(0.3)
    assert ids(first + rest) == list(range(1, len(calls) + 1))
    async with open_stream(live.client, path, after=7) as feed:
        assert ids(await feed.events(3)) == [8, 9, 10]
    # EventSource resends the original URL: its header wins over ?after=.
    async with open_stream(live.client, path, headers={"Last-Event-ID": "9"}, after=2) as feed:
        assert ids(await feed.events(1)) == [10]
        await feed.nothing_for(0.2)


async def test_global_feed_ids_are_positions_in_order(live: Live) -> None:
    """/v1/stream carries every conference's events with the global position as id, in order, and resumes."""
    calls = whole_call(CUSTOMER, AGENT, CONF_SID)
    await live.deliver(calls[0], voice(OTHER), *calls[1:5])
    async with open_stream(live.client, "/v1/stream") as feed:
        replayed = await feed.events(6)
        await live.deliver(calls[5])
        (new,) = await feed.events(1)
    positions = ids([*replayed, new])
    assert positions == sorted(positions) and len(set(positions)) == 7  # increasing, not dense
    assert [m.json()["position"] for m in (*replayed, new)] == positions
    assert [m.json()["conference_id"] for m in replayed[:2]] == [ROOM, f"room-{OTHER}"]
    async with open_stream(live.client, "/v1/stream", headers={"Last-Event-ID": str(positions[4])}) as feed:
        assert ids(await feed.events(2)) == positions[5:]
        await feed.nothing_for(0.2)


async def test_a_change_made_by_another_process_reaches_subscribers(live: Live, database_url: str) -> None:
    """Callbacks stored by a second app on its own engine wake the first app's subscribers (NOTIFY, not polling)."""
    other_engine = create_engine(database_url, pool_size=2)
    other = make_app(other_engine)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=other), base_url="http://other") as client:
            await post_signed(client, "/twilio/voice", voice(CUSTOMER).params)
            async with open_stream(live.client, "/v1/stream") as everything, \
                    open_stream(live.client, f"/v1/conferences/{ROOM}/stream") as one:
                assert [m.event for m in await everything.events(1)] == ["conference.created"]
                assert ids(await one.events(1)) == [1]
                join = conference_event(ROOM, CONF_SID, 1, "participant-join", call_sid=CUSTOMER, label="customer")
                assert (await post_signed(client, join.path, join.params)).status_code == 204
                await post_signed(client, "/twilio/voice", voice(OTHER).params)
                assert [m.event for m in await everything.events(2, within_s=3)] == [
                    "participant.joined", "conference.created"]
                assert [m.event for m in await one.events(1, within_s=3)] == ["participant.joined"]
    finally:
        await other.state.container.live.aclose()
        await other_engine.dispose()


async def test_stream_errors_are_problem_json(client: httpx.AsyncClient) -> None:
    """No key is 401, a key without `read` 403, an unknown conference 404, a bad Last-Event-ID 422: problem JSON."""
    await post_signed(client, "/twilio/voice", voice(CUSTOMER).params)
    cases = [
        ("/v1/stream", {"Authorization": ""}, 401, "unauthorized"),
        (f"/v1/conferences/{ROOM}/stream", {"Authorization": ""}, 401, "unauthorized"),
        ("/v1/stream", {"Authorization": f"Bearer {KEYS['controller']}"}, 403, "forbidden"),
        (f"/v1/conferences/{ROOM}/stream", {"Authorization": f"Bearer {KEYS['controller']}"}, 403, "forbidden"),
        ("/v1/conferences/room-nope/stream", {}, 404, "conference_not_found"),
        (f"/v1/conferences/{ROOM}/stream", {"Last-Event-ID": "abc"}, 422, "invalid_request"),
        ("/v1/stream?after=-1", {}, 422, "invalid_request"),
    ]
    for path, headers, status, code in cases:
        response = await client.get(path, headers=headers)
        assert response.status_code == status, (path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == code


async def test_the_server_closes_a_stream_after_its_lifetime(engine: AsyncEngine) -> None:
    """CONFCTL_SSE_MAX_S caps a connection: the stream ends by itself, after a retry hint and heartbeats."""
    app = make_app(engine, sse_max_s=0.5, sse_heartbeat_s=0.1)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t",
                                     headers=ADMIN) as client:
            await post_signed(client, "/twilio/voice", voice(CUSTOMER).params)
            # The transport hands the response over once the app has finished it: the stream did end.
            response = await client.get(f"/v1/conferences/{ROOM}/stream", timeout=5)
    finally:
        await app.state.container.live.aclose()
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    blocks = parse(response.text)
    assert blocks[0].retry is not None
    assert [(b.id, b.event) for b in blocks if b.id] == [("1", "conference.created")]
    assert sum(1 for b in blocks if b.comments) >= 2


async def test_openapi_describes_the_streams(client: httpx.AsyncClient) -> None:
    """Both feeds are documented as text/event-stream whose messages carry a LiveEvent (named by `x-sse-data`:
    OpenAPI 3.1 has no itemSchema)."""
    spec = (await client.get("/openapi.json")).json()
    for path in ("/v1/stream", "/v1/conferences/{conference_id}/stream"):
        content = spec["paths"][path]["get"]["responses"]["200"]["content"]["text/event-stream"]
        assert content["x-sse-data"] == {"$ref": "#/components/schemas/LiveEvent"}
    assert "conference_id" in spec["components"]["schemas"]["LiveEvent"]["required"]
