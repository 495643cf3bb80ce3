"""Fixtures of the real-process tests: a clean migrated database and a running stack per test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.process.stack import ProcessStack, empty_tables, running_stack


@pytest.fixture
async def clean_database(database_url: str, migrated_engine: AsyncEngine) -> str:
    """The session's database at the migrations' head with every table emptied, whatever tables they made."""
    await empty_tables(migrated_engine)
    return database_url


@pytest.fixture
async def stack(clean_database: str, tmp_path: Path) -> AsyncIterator[ProcessStack]:
    """The simulator and one `confctl serve` process, wired through the two proxies."""
    async with running_stack(clean_database, tmp_path) as running:
        yield running


@pytest.fixture
async def two_serves(clean_database: str, tmp_path: Path) -> AsyncIterator[ProcessStack]:
    """The simulator and two `confctl serve` processes on one database; the front proxy alternates webhooks."""
    async with running_stack(clean_database, tmp_path, serves=2) as running:
        yield running
