"""NOTIFY at commit: a committed append wakes listeners; a refused one (rolled back) never goes live."""

from __future__ import annotations

import asyncio
import json

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from confctl.adapters.pg_schema import NOTIFY_CHANNEL
from confctl.adapters.pg_store import PostgresEventStore
from confctl.service.ports import ConcurrencyError, NewEvent


async def test_notify_only_for_committed_appends(engine: AsyncEngine) -> None:
    """Listeners on another connection hear the committed append with its position, and nothing for a conflict."""
    heard: asyncio.Queue[dict[str, object]] = asyncio.Queue()
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver: asyncpg.Connection = raw.driver_connection  # type: ignore[assignment]
        def listener(*args: object) -> None:
            heard.put_nowait(json.loads(str(args[-1])))

        await driver.add_listener(NOTIFY_CHANNEL, listener)
        store = PostgresEventStore(engine)
        result = await store.append("room-n", [NewEvent("x.happened", {})], expected_version=0)
        note = await asyncio.wait_for(heard.get(), timeout=5)
        assert note == {"stream_id": "room-n", "position": result.events[-1].position}
        with pytest.raises(ConcurrencyError):
            await store.append("room-n", [NewEvent("x.happened", {})], expected_version=0)
        duplicate = await store.append("room-n", [], expected_version=None, dedupe_key="k")
        assert not duplicate.duplicate
        await asyncio.sleep(0.3)
        assert heard.empty()
        await driver.remove_listener(NOTIFY_CHANNEL, listener)
