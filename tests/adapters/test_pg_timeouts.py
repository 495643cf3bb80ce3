"""The PostgreSQL adapters against a frozen database (SIGSTOP on a cluster of this module's own): every wait is
bounded, a connection given up on is never reused, the store fails at once while the database is known to be
down and recovers by itself after SIGCONT, a queued append whose caller gave up is never stored, and the
LISTEN connection comes back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable
from typing import TypeVar

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from confctl.adapters.database import create_engine, migrate
from confctl.adapters.pg_notify import PgNotifier
from confctl.adapters.pg_pool import LazyPool
from confctl.adapters.pg_schema import NOTIFY_CHANNEL
from confctl.adapters.pg_store import PostgresEventStore
from confctl.service.outage import StoreUnavailable
from confctl.service.ports import NewEvent
from tests.conftest import TABLES
from tests.support.pg_cluster import OwnCluster

T = TypeVar("T")
TIMEOUT_S = 1.0


async def failure_within(seconds: float, call: Awaitable[T]) -> tuple[BaseException, float]:
    """The exception `call` raised and when; AssertionError if it succeeds or takes longer than `seconds`."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(seconds):
            await call
    except TimeoutError:
        raise AssertionError(f"no answer within {seconds}s") from None
    except Exception as exc:
        return exc, time.monotonic() - started
    raise AssertionError("it succeeded on a frozen database")


@pytest.fixture(scope="module")
async def cluster() -> AsyncIterator[OwnCluster]:
    """This module's own migrated cluster (the session's shared one must never be frozen)."""
    own = OwnCluster()
    await asyncio.to_thread(own.start)
    try:
        engine = create_engine(own.url, pool_size=1)
        await migrate(engine)
        await engine.dispose()
        yield own
    finally:
        await asyncio.to_thread(own.close)


@pytest.fixture
async def own_engine(cluster: OwnCluster) -> AsyncIterator[AsyncEngine]:
    """An engine on the cluster's emptied tables; the cluster is thawed after the test whatever happened."""
    engine = create_engine(cluster.url, pool_size=2)
    async with engine.begin() as conn:
        await conn.execute(sa.text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY"))
    try:
        yield engine
    finally:
        cluster.thaw()
        await engine.dispose()


async def test_reads_fail_within_the_timeout_then_at_once_and_work_again_after_the_thaw(
        own_engine: AsyncEngine, cluster: OwnCluster) -> None:
    """The first read of a frozen database fails with StoreUnavailable within the timeout (its connection
    terminated, not waited on), the next ones at once; after SIGCONT the same store reads again by itself."""
    store = PostgresEventStore(own_engine, LazyPool(own_engine, timeout_s=TIMEOUT_S))
    try:
        await store.append("room-r", [NewEvent("x.happened", {})], expected_version=0)
        assert len(await store.read_stream("room-r")) == 1  # the pool holds live connections now
        with cluster.frozen():
            first, took = await failure_within(5.0, store.read_stream("room-r"))
            assert isinstance(first, StoreUnavailable) and took < TIMEOUT_S + 0.5, (first, took)
            again, took = await failure_within(5.0, store.get_document("room-r"))
            assert isinstance(again, StoreUnavailable) and took < 0.2, (again, took)
            listed, took = await failure_within(5.0, store.list_documents(status=None, limit=10, cursor=None))
            assert isinstance(listed, StoreUnavailable) and took < 0.2, (listed, took)
        deadline = time.monotonic() + 5.0
        while True:
            try:
                assert len(await store.read_stream("room-r")) == 1
                break
            except StoreUnavailable:
                assert time.monotonic() < deadline, "the store did not come back after the thaw"
                await asyncio.sleep(0.1)
    finally:
        await asyncio.wait_for(store.aclose(), 10)


async def test_an_append_still_queued_when_its_caller_gives_up_is_never_stored(
        own_engine: AsyncEngine, cluster: OwnCluster) -> None:
    """Frozen, one committer: the append it sent fails as `unknown`, the one queued behind it (same stream)
    fails as not stored, both within the wait bound; after the thaw the queued one was indeed never stored."""
    store = PostgresEventStore(own_engine, LazyPool(own_engine, timeout_s=TIMEOUT_S), committers=1,
                               append_wait_s=TIMEOUT_S)
    try:
        await store.append("room-q", [NewEvent("x.first", {})], expected_version=0)
        with cluster.frozen():
            sent = asyncio.ensure_future(store.append("room-q", [NewEvent("x.sent", {})], expected_version=1))
            await asyncio.sleep(0.1)  # taken by the committer, now stuck on the frozen server
            queued = asyncio.ensure_future(store.append("room-q", [NewEvent("x.queued", {})], expected_version=None))
            failures = [await failure_within(5.0, call) for call in (sent, queued)]
            for exc, took in failures:
                assert isinstance(exc, StoreUnavailable) and took < TIMEOUT_S + 0.5, (exc, took)
            assert [exc.unknown for exc, _ in failures] == [True, False]  # type: ignore[attr-defined]
        await asyncio.sleep(2 * TIMEOUT_S)  # whatever the server still had in hand is done by now
        stored = []
        for _ in range(50):
            try:
                stored = [e.type for e in await store.read_stream("room-q")]
                break
            except StoreUnavailable:
                await asyncio.sleep(0.1)
        assert "x.queued" not in stored and stored[0] == "x.first", stored
    finally:
        await asyncio.wait_for(store.aclose(), 10)


async def test_the_listener_listens_again_after_a_freeze(own_engine: AsyncEngine, cluster: OwnCluster) -> None:
    """A LISTEN connection whose check times out on a frozen server is dropped without waiting on it, and the
    listener connects again after the thaw: a subscriber opened before the freeze is woken by a NOTIFY after."""
    notifier = PgNotifier(own_engine, reconnect_s=0.1, check_s=0.3, timeout_s=0.5)
    try:
        async with notifier.subscribe("room-l") as subscription:
            before = notifier.backend_pid
            assert before is not None
            with cluster.frozen():
                await asyncio.sleep(3.0)  # the check (0.3 s), its timeout (0.5 s), the close given up on
            deadline = time.monotonic() + 10.0
            while notifier.backend_pid in (None, before):
                assert time.monotonic() < deadline, f"the listener did not come back ({notifier.backend_pid})"
                await asyncio.sleep(0.05)
            await subscription.wait(0.01)  # the wake-up every follower gets on a reconnect
            async with own_engine.connect() as conn:
                await conn.execute(sa.text("SELECT pg_notify(:channel, :payload)"),
                                   {"channel": NOTIFY_CHANNEL, "payload": '{"stream_id": "room-l", "position": 1}'})
                await conn.commit()
            assert await subscription.wait(3.0)
    finally:
        await asyncio.wait_for(notifier.aclose(), 10)
