"""Alembic environment, async: runs the migrations over the asyncpg URL confctl is configured with.

Shipped inside the package (an installed wheel migrates with no source tree); `confctl migrate` and the
servers' start-up load it through `confctl.adapters.database.alembic_config`.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from confctl.adapters.pg_schema import metadata

config = context.config
target_metadata = metadata


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    # `alembic upgrade` by hand from the repo top (alembic.ini sets no URL): the database confctl is set up for.
    from confctl.entry.settings import Settings

    configured = Settings().database_url
    if not configured:
        raise RuntimeError("no database URL: set CONFCTL_DATABASE_URL, or run `confctl migrate` (which can use "
                           "the embedded PostgreSQL)")
    return configured


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_async_engine(_url())
    async with engine.connect() as connection:
        await connection.run_sync(_run)
        await connection.commit()
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    existing = config.attributes.get("connection")
    if existing is not None:
        _run(existing)
    else:
        asyncio.run(_run_async())
