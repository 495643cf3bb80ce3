"""asyncpg's own pool for the hot paths (appends, stream reads, SSE), beside SQLAlchemy for admin paths.

The pool is opened lazily on first use, so an app driven without its lifespan (the tests) works the same. No
pre-ping on checkout: a connection that turns out broken raises, is dropped by the pool, and the next
checkout connects afresh. JSON and JSONB columns are encoded and decoded with orjson.
"""

from __future__ import annotations

import asyncio
import inspect
import weakref
from typing import Any

import asyncpg
import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

_CONNECT_PARAMETERS = frozenset(inspect.signature(asyncpg.connect).parameters)


def connect_kwargs(engine: AsyncEngine) -> dict[str, Any]:
    """asyncpg.connect() arguments for the engine's database, as the engine's own dialect builds them.

    The dialect knows the URL's forms (a unix-socket `?host=/path`, `ssl=`, several hosts); options that are
    SQLAlchemy's own (its prepared-statement cache settings) are left out.
    """
    args, kwargs = engine.dialect.create_connect_args(engine.url)
    if args:
        raise ValueError(f"unexpected positional connect arguments for {engine.url!r}")
    return {key: value for key, value in kwargs.items() if key in _CONNECT_PARAMETERS}


_SHARED: weakref.WeakKeyDictionary[AsyncEngine, LazyPool] = weakref.WeakKeyDictionary()


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


async def _keep(_conn: asyncpg.Connection) -> None:
    """No reset on release: asyncpg's default (UNLISTEN, RESET ALL, unlock…) is a round trip per checkout, and
    nothing here leaves session state on a pooled connection (listeners and held locks have their own)."""


async def _init(conn: asyncpg.Connection) -> None:
    for kind in ("json", "jsonb"):
        await conn.set_type_codec(kind, encoder=_dumps, decoder=orjson.loads, schema="pg_catalog")


class LazyPool:
    """One asyncpg pool per process and event loop, opened on first `get()` (again after `aclose()`)."""

    @classmethod
    def shared(cls, engine: AsyncEngine, *, max_size: int = 10) -> LazyPool:
        """The pool of `engine`: apps built on one engine (tests, tools) share its connections."""
        pool = _SHARED.get(engine)
        if pool is None:
            pool = _SHARED[engine] = cls(engine, max_size=max_size)
        return pool

    def __init__(self, engine: AsyncEngine, *, min_size: int = 2, max_size: int = 10,
                 command_timeout_s: float | None = 30.0, connect_timeout_s: float = 5.0) -> None:
        self._engine = engine
        self._connect_timeout_s = connect_timeout_s
        self._min_size = min_size
        self._max_size = max_size
        self._command_timeout_s = command_timeout_s
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> asyncpg.Pool:
        """The pool, opened if needed."""
        if self._pool is not None:
            return self._pool
        async with self._lock:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    **connect_kwargs(self._engine), min_size=self._min_size, max_size=self._max_size,
                    init=_init, reset=_keep, command_timeout=self._command_timeout_s, timeout=self._connect_timeout_s,
                    # The statements are few and fixed: keep them prepared per connection.
                    statement_cache_size=256, max_inactive_connection_lifetime=300.0,
                )
            return self._pool

    async def connect(self) -> asyncpg.Connection:
        """A dedicated connection outside the pool (listeners, liveness locks)."""
        conn: asyncpg.Connection = await asyncpg.connect(**connect_kwargs(self._engine))
        await _init(conn)
        return conn

    async def aclose(self) -> None:
        """Close the pool's connections."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()
