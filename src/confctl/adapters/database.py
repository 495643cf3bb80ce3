"""Database wiring: the engine, Alembic migrations to head, and the readiness check.

Alembic is imported where it is used: it costs a third of a second, which commands that only need an engine
(`rebuild-projections`) need not pay.
"""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

if TYPE_CHECKING:
    from alembic.config import Config

# The migrations ship inside the package, so an installed wheel has them; the repo's alembic.ini points here
# too, for developers' `alembic revision`.
MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"


def alembic_config(url: str) -> Config:
    """Alembic's config for our migrations, pointed at `url` (built in code: no alembic.ini at run time)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def create_engine(url: str, pool_size: int = 10) -> AsyncEngine:
    """An asyncpg engine for the admin paths. No pre-ping (a round trip per checkout): a connection found
    broken is invalidated by the pool when it fails, and the next checkout connects afresh."""
    return create_async_engine(url, pool_size=pool_size, max_overflow=pool_size)


async def migrate(engine: AsyncEngine) -> None:
    """Apply every migration up to head on this engine's database."""
    url = engine.url.render_as_string(hide_password=False)
    config = alembic_config(url)

    def upgrade(connection: Connection) -> None:
        config.attributes["connection"] = connection
        from alembic import command

        command.upgrade(config, "head")

    async with engine.begin() as conn:
        await conn.run_sync(upgrade)


def migrate_sync(url: str) -> None:
    """`confctl migrate`: apply the migrations from a plain (non-async) context."""

    async def run() -> None:
        engine = create_engine(url, pool_size=1)
        try:
            await migrate(engine)
        finally:
            await engine.dispose()

    asyncio.run(run())


@functools.cache
def head_revision() -> str | None:
    """The newest migration shipped with this code (read from disk once: readiness probes call often)."""
    from alembic.script import ScriptDirectory

    head: str | None = ScriptDirectory.from_config(alembic_config("postgresql://unused")).get_current_head()
    return head


@functools.cache
def known_revisions() -> frozenset[str]:
    """Every migration shipped with this code, the head included."""
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(alembic_config("postgresql://unused"))
    return frozenset(script.revision for script in scripts.walk_revisions())


def schema_ready(revisions: list[str]) -> bool:
    """Whether this code can serve a database whose `alembic_version` holds `revisions`.

    The head is ready, and so is a revision this code does not know: a newer release's migration, applied
    before its replicas replace this one in a rolling upgrade (migrations are additive, so older code keeps
    working on the newer schema). A known older revision, or none, is not: this code needs what it lacks."""
    if len(revisions) != 1:
        return False
    return revisions[0] == head_revision() or revisions[0] not in known_revisions()


async def at_head(engine: AsyncEngine) -> bool:
    """Whether the database's schema is at the newest migration."""
    head = head_revision()

    def current(connection: Connection) -> str | None:
        from alembic.runtime.migration import MigrationContext

        return MigrationContext.configure(connection).get_current_revision()

    async with engine.connect() as conn:
        return await conn.run_sync(current) == head
