"""Fixtures of the generated-client tests: one running confctl with its simulator, and where its document is.

The stack is the real-process one (tests/process/stack.py): `confctl serve` and `confctl simulator` as
processes, so the generators read the `/openapi.json` an operator serves and the generated client speaks
real HTTP. It starts once for this folder: both tests only add conferences of their own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.process.stack import ProcessStack, empty_tables, running_stack


@pytest.fixture(scope="package")
async def stack(database_url: str, migrated_engine: AsyncEngine,
                tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ProcessStack]:
    """The simulator and one `confctl serve` process on the session's database, emptied first."""
    await empty_tables(migrated_engine)
    async with running_stack(database_url, tmp_path_factory.mktemp("clients-stack")) as running:
        yield running


@pytest.fixture(scope="package")
def openapi_url(stack: ProcessStack) -> str:
    """The live document, as a developer would hand it to a generator."""
    return f"{stack.serve.url}/openapi.json"
