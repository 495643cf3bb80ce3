"""The LISTEN side of live updates: one connection per process that wakes followers, and comes back by itself."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from confctl.adapters.pg_notify import PgNotifier, connect_kwargs
from confctl.adapters.pg_store import PostgresEventStore
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
