"""Migration 0002 on a database that already holds a log written by 0001's code; the repo's alembic.ini."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.engine.url import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from confctl.adapters.database import MIGRATIONS, alembic_config, create_engine, head_revision
from confctl.adapters.pg_store import PostgresEventStore
from confctl.service.ports import ConcurrencyError, NewEvent


@pytest.fixture
async def old_database(database_url: str, migrated_engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """A database of its own on the test server, migrated to 0001 only."""
    name = f"old_{uuid.uuid4().hex[:8]}"
    async with migrated_engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = make_url(database_url).set(database=name).render_as_string(hide_password=False)
    engine = create_engine(url, pool_size=2)
    await _alembic(engine, "upgrade", "0001")
    yield engine
    await engine.dispose()
    async with migrated_engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))


async def _alembic(engine: AsyncEngine, verb: str, revision: str) -> None:
    config = alembic_config(engine.url.render_as_string(hide_password=False))

    def run(connection: Connection) -> None:
        config.attributes["connection"] = connection
        getattr(command, verb)(config, revision)

    async with engine.begin() as conn:
        await conn.run_sync(run)


async def test_an_old_log_is_kept_and_new_appends_sort_after_it(old_database: AsyncEngine) -> None:
    """Events stored under 0001 (identity positions) keep their positions and versions; after 0002 the streams
    know their heads, a stale append conflicts, and new events sort after every old one in the global feed."""
    async with old_database.begin() as conn:
        for stream, count in (("room-a", 3), ("room-b", 2)):
            for version in range(1, count + 1):
                await conn.execute(sa.text(
                    "INSERT INTO events (stream_id, version, type, data, metadata)"
                    " VALUES (:s, :v, 'legacy.fact', '{}', '{}')"), {"s": stream, "v": version})
    await _alembic(old_database, "upgrade", "head")
    store = PostgresEventStore(old_database)
    try:
        old = await store.read_all()
        assert [(e.stream_id, e.version) for e in old] == [
            ("room-a", 1), ("room-a", 2), ("room-a", 3), ("room-b", 1), ("room-b", 2)]
        assert [e.position for e in old] == [1, 2, 3, 4, 5]
        with pytest.raises(ConcurrencyError):
            await store.append("room-a", [NewEvent("new.fact", {})], expected_version=2)
        result = await store.append("room-a", [NewEvent("new.fact", {})], expected_version=3)
        assert result.version == 4
        everything = await store.read_all()
        assert everything[:5] == old and everything[-1].position > old[-1].position
    finally:
        await store.aclose()
    await _alembic(old_database, "downgrade", "0001")  # and back, with identity positions after the new ones
    async with old_database.begin() as conn:
        await conn.execute(sa.text(
            "INSERT INTO events (stream_id, version, type, data, metadata) VALUES ('room-c', 1, 'x', '{}', '{}')"))
        positions = (await conn.execute(sa.text("SELECT position FROM events ORDER BY position"))).scalars().all()
    assert positions[-1] > positions[-2] and len(set(positions)) == 7


def test_the_repo_alembic_ini_uses_the_shipped_migrations() -> None:
    """`alembic` run by a developer at the top of the repo works on the migrations that the package ships."""
    script = ScriptDirectory.from_config(Config(str(Path(__file__).resolve().parents[2] / "alembic.ini")))
    assert Path(script.dir).resolve() == MIGRATIONS
    assert script.get_current_head() == head_revision()
