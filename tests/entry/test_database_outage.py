"""The app during a database outage, on a PostgreSQL cluster of this module's own (frozen by SIGSTOP, or
stopped): /readyz, reads and callbacks answer 503 quickly, the voice webhook still answers its TwiML and its
fact is stored once the database is back, with no restart and nothing stored twice.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from confctl.adapters.database import create_engine, migrate
from confctl.entry.app import create_app
from confctl.entry.settings import Settings
from tests.conftest import TABLES
from tests.entry.conftest import KEYS, FixedClock, settings
from tests.support.pg_cluster import OwnCluster
from tests.support.twilio_forms import conference_event, post_signed, voice

T = TypeVar("T")

CUSTOMER = "CA" + "7" * 32
ROOM = f"room-{CUSTOMER}"
CONF_SID = "CF" + "7" * 32
DB_TIMEOUT_S = 1.0  # CONFCTL_DB_TIMEOUT_S here: small, so that the tests are quick


async def within(seconds: float, answer: Awaitable[T]) -> tuple[T, float]:
    """`answer`'s result and how long it took; AssertionError if it takes longer than `seconds`."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(seconds):
            result = await answer
    except TimeoutError:
        raise AssertionError(f"no answer within {seconds}s") from None
    return result, time.monotonic() - started


async def eventually(check: Any, within_s: float = 10.0) -> None:
    """`check()` until it stops raising AssertionError (its last failure after `within_s`)."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            await check()
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.1)


@pytest.fixture(scope="module")
async def cluster() -> AsyncIterator[OwnCluster]:
    """This module's own cluster, migrated; never the session's shared one, which other tests use."""
    own = OwnCluster()
    await asyncio.to_thread(own.start)
    try:
        engine = create_engine(own.url, pool_size=1)
        await migrate(engine)
        await engine.dispose()
        yield own
    finally:
        await asyncio.to_thread(own.close)


def outage_settings() -> Settings:
    return settings().model_copy(update={"db_timeout_s": DB_TIMEOUT_S, "webhook_timeout_s": 5.0,
                                         "voice_store_wait_s": 0.5})


@pytest.fixture
async def app(cluster: OwnCluster) -> AsyncIterator[FastAPI]:
    """The app on empty tables of the cluster (an engine, and so a pool, of its own per test)."""
    engine = create_engine(cluster.url, pool_size=2)
    async with engine.begin() as conn:
        await conn.execute(sa.text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY"))
    application = create_app(outage_settings(), engine=engine, clock=FixedClock())
    try:
        yield application
    finally:
        cluster.thaw()
        if not cluster.running:
            await asyncio.to_thread(cluster.restart)
        container = application.state.container
        deferred = getattr(container.callbacks, "deferred", None)
        if deferred is not None:
            await deferred.aclose()
        await asyncio.wait_for(container.aclose(), 20)
        await engine.dispose()


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver",
                                 headers={"Authorization": f"Bearer {KEYS['admin']}"}) as c:
        yield c


def customer_joins(seq: int = 1) -> Any:
    return conference_event(ROOM, CONF_SID, seq, "participant-join", call_sid=CUSTOMER, label="customer",
                            end_on_exit=True)


async def event_types(client: httpx.AsyncClient) -> list[str]:
    response = await client.get(f"/v1/conferences/{ROOM}/events")
    assert response.status_code == 200, response.text
    return [e["type"] for e in response.json()["items"]]


def deferred_gauge(metrics: str) -> float:
    line = next(x for x in metrics.splitlines() if x.startswith("confctl_deferred_facts "))
    return float(line.split()[1])


async def test_readyz_answers_503_within_a_second_while_the_database_is_frozen(
        client: httpx.AsyncClient, cluster: OwnCluster) -> None:
    """/readyz is 200, then 503 within a second (each time) while PostgreSQL is stopped by SIGSTOP, and 200
    again soon after SIGCONT."""
    assert (await client.get("/readyz")).status_code == 200
    with cluster.frozen():
        for _ in range(2):
            answer, took = await within(3.0, client.get("/readyz"))
            assert answer.status_code == 503 and took < 1.0, (answer.status_code, took, answer.text)

    async def ready() -> None:
        assert (await client.get("/readyz")).status_code == 200

    await eventually(ready, within_s=5.0)


async def test_reads_answer_database_unavailable_quickly_while_the_database_is_frozen(
        client: httpx.AsyncClient, cluster: OwnCluster) -> None:
    """A conference's document, its events and the list answer 503 `database_unavailable` within a few
    seconds while PostgreSQL is frozen, and 200 again after it thaws, with no restart."""
    assert (await post_signed(client, "/twilio/voice", voice(CUSTOMER).params)).status_code == 200
    with cluster.frozen():
        for path in (f"/v1/conferences/{ROOM}", f"/v1/conferences/{ROOM}/events", "/v1/conferences"):
            answer, took = await within(8.0, client.get(path))
            assert answer.status_code == 503, (path, answer.status_code, answer.text)
            assert answer.json()["code"] == "database_unavailable" and took < 2 * DB_TIMEOUT_S + 0.5, (path, took)

    async def readable() -> None:
        assert (await client.get(f"/v1/conferences/{ROOM}")).status_code == 200

    await eventually(readable, within_s=5.0)


async def test_a_callback_answers_503_quickly_while_frozen_and_is_stored_once_when_delivered_again(
        client: httpx.AsyncClient, cluster: OwnCluster) -> None:
    """A conference callback during the freeze gets 503 (not 500, not a hang) within the webhook budget;
    delivered again after the thaw (Twilio's retry) it is stored, exactly once."""
    assert (await post_signed(client, "/twilio/voice", voice(CUSTOMER).params)).status_code == 200
    join = customer_joins()
    with cluster.frozen():
        for _ in range(2):
            answer, took = await within(12.0, post_signed(client, join.path, join.params))
            assert answer.status_code == 503, (answer.status_code, answer.text)
            assert took < 2 * DB_TIMEOUT_S + 1.0, took

    async def stored() -> None:
        assert (await post_signed(client, join.path, join.params)).status_code == 204

    await eventually(stored, within_s=5.0)
    assert (await post_signed(client, join.path, join.params)).status_code == 204  # a repeat: stores nothing
    assert await event_types(client) == ["conference.created", "participant.joined"]


async def test_the_voice_webhook_answers_its_twiml_while_frozen_and_the_call_is_stored_after(
        client: httpx.AsyncClient, cluster: OwnCluster) -> None:
    """During the freeze the voice webhook answers TwiML into room-{CallSid} within its short wait (twice:
    Twilio may repeat it), the fact waits in the deferred gauge, the customer's join answers 503; after the
    thaw the call is stored exactly once with no restart and the gauge is back to 0."""
    call = voice(CUSTOMER)
    with cluster.frozen():
        for _ in range(2):
            answer, took = await within(5.0, post_signed(client, call.path, call.params))
            assert answer.status_code == 200, (answer.status_code, answer.text)
            assert "<Conference" in answer.text and ROOM in answer.text and took < 2.0, (took, answer.text)
        join = customer_joins()
        answer, _ = await within(12.0, post_signed(client, join.path, join.params))
        assert answer.status_code == 503, answer.text
        assert deferred_gauge((await client.get("/metrics")).text) == 1

    async def stored() -> None:
        response = await client.get(f"/v1/conferences/{ROOM}")
        assert response.status_code == 200, response.text
        assert response.json()["customer"]["call_sid"] == CUSTOMER

    await eventually(stored, within_s=10.0)
    assert await event_types(client) == ["conference.created"]
    assert deferred_gauge((await client.get("/metrics")).text) == 0


async def test_the_voice_webhook_answers_its_twiml_while_the_database_is_stopped(
        client: httpx.AsyncClient, cluster: OwnCluster) -> None:
    """With PostgreSQL shut down (connections closed, new ones refused) the voice webhook still answers its
    TwiML, /readyz and callbacks answer 503 at once; after a restart of PostgreSQL alone the call is stored."""
    assert (await client.get("/readyz")).status_code == 200  # the pool holds connections the stop will close
    await asyncio.to_thread(cluster.stop)
    call, join = voice(CUSTOMER), customer_joins()
    answer, took = await within(5.0, post_signed(client, call.path, call.params))
    assert answer.status_code == 200 and ROOM in answer.text and took < 2.0, (answer.status_code, took)
    ready, took = await within(3.0, client.get("/readyz"))
    assert ready.status_code == 503 and took < 1.0, (ready.status_code, took)
    refused, took = await within(12.0, post_signed(client, join.path, join.params))
    assert refused.status_code == 503 and took < 2.0, (refused.status_code, took)
    await asyncio.to_thread(cluster.restart)

    async def stored() -> None:
        response = await client.get(f"/v1/conferences/{ROOM}")
        assert response.status_code == 200, response.text

    await eventually(stored, within_s=10.0)
    assert (await post_signed(client, join.path, join.params)).status_code == 204
    assert await event_types(client) == ["conference.created", "participant.joined"]
