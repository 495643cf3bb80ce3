"""The LISTEN side of live updates: one connection per process that wakes followers, and comes back by itself."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from confctl.adapters.database import create_engine
from confctl.adapters.pg_notify import PgNotifier, connect_kwargs
from confctl.adapters.pg_store import PostgresEventStore
from confctl.service.live import follow
from confctl.service.ports import NewEvent


def test_connect_arguments_come_from_the_engine_url() -> None:
    """A unix-socket URL (`?host=/dir`) becomes asyncpg's host; SQLAlchemy-only options are left out."""
    engine = create_async_engine(
        "postgresql+asyncpg://postgres:secret@/confctl?host=/run/pg%20data&prepared_statement_cache_size=0"
    )
    assert connect_kwargs(engine) == {
        "user": "postgres", "password": "secret", "database": "confctl", "host": "/run/pg data",
    }


async def test_listener_wakes_followers_and_reconnects_after_losing_its_connection(engine: AsyncEngine) -> None:
    """Committed appends wake subscribers of their stream; killed by the server, the listener listens again."""
    notifier = PgNotifier(engine, reconnect_s=0.05)
    store = PostgresEventStore(engine)
    try:
        async with notifier.subscribe("room-a") as subscription:
            pid = notifier.backend_pid
            assert pid is not None
            await store.append("room-a", [NewEvent("x.happened", {})], expected_version=0)
            assert await subscription.wait(3)
            await store.append("room-b", [NewEvent("x.happened", {})], expected_version=0)
            assert not await subscription.wait(0.3)

            async with engine.connect() as conn:
                await conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            assert await subscription.wait(3)  # listening again: everyone is told to look again
            for _ in range(100):
                if notifier.backend_pid not in (None, pid):
                    break
                await asyncio.sleep(0.02)
            assert notifier.backend_pid not in (None, pid)
            await store.append("room-a", [NewEvent("x.happened", {})], expected_version=1)
            assert await subscription.wait(3)
    finally:
        await notifier.aclose()
    assert notifier.backend_pid is None


async def test_a_global_follower_misses_nothing_while_two_processes_append_at_once(
    engine: AsyncEngine, database_url: str
) -> None:
    """Concurrent appends through two engines: the follower gets every position exactly once, in order."""
    other = create_engine(database_url, pool_size=5)
    stores = [PostgresEventStore(engine), PostgresEventStore(other)]
    notifier = PgNotifier(engine)
    total = 60
    events = follow(stores[0], notifier, stream_id=None, after=0, poll_s=60)
    received: list[int] = []

    async def collect() -> None:
        async for event in events:
            received.append(event.position)
            if len(received) == total:
                return

    async def append(i: int) -> None:
        await stores[i % 2].append(f"room-{i % 7}", [NewEvent("x.happened", {"i": i})], expected_version=None)

    try:
        collector = asyncio.create_task(collect())
        await asyncio.sleep(0.05)
        await asyncio.gather(*(append(i) for i in range(total)))
        await asyncio.wait_for(collector, 5)
    finally:
        await events.aclose()
        await notifier.aclose()
        await other.dispose()
    stored = [e.position for e in await stores[0].read_all(after_position=0, limit=1000)]
    assert received == stored and len(stored) == total
