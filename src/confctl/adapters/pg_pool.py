"""asyncpg's own pool for the hot paths (appends, stream reads, SSE), beside SQLAlchemy for admin paths.

The pool is opened lazily on first use, so an app driven without its lifespan (the tests) works the same. No
pre-ping on checkout: a connection that turns out broken raises, is dropped by the pool, and the next
checkout connects afresh. JSON and JSONB columns are encoded and decoded with orjson.

Every wait on the database is bounded by `timeout_s`: connecting, a checkout, each statement (asyncpg's
`command_timeout`, and the server's `statement_timeout` a little later, so a statement the client gave up on
does not run on, holding locks). A connection whose statement failed for want of the server (timed out,
cancelled, lost) is terminated at once, never handed back for reuse: against a frozen server its cancel
request, its reset and its graceful close would each hang in turn. Such a failure is raised as
`StoreUnavailable` and marks the database down: until a probe (one at a time, every `probe_s`) gets an
answer again, `acquire()` fails at once, so a webhook or a read answers 503 in milliseconds instead of
each waiting out its own timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import weakref
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import orjson
import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from confctl.service.outage import StoreUnavailable

log = structlog.get_logger(__name__)

_CONNECT_PARAMETERS = frozenset(inspect.signature(asyncpg.connect).parameters)
# The database is not there, or not in time: a connection refused, lost or timed out, a server shutting
# down or starting up (the operator-intervention class, 57xxx), a statement cancelled by statement_timeout.
_ABSENT = (TimeoutError, OSError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError,
           asyncpg.exceptions.OperatorInterventionError)


def connect_kwargs(engine: AsyncEngine) -> dict[str, Any]:
    """asyncpg.connect() arguments for the engine's database, as the engine's own dialect builds them.

    The dialect knows the URL's forms (a unix-socket `?host=/path`, `ssl=`, several hosts); options that are
    SQLAlchemy's own (its prepared-statement cache settings) are left out.
    """
    args, kwargs = engine.dialect.create_connect_args(engine.url)
    if args:
        raise ValueError(f"unexpected positional connect arguments for {engine.url!r}")
    return {key: value for key, value in kwargs.items() if key in _CONNECT_PARAMETERS}


def is_absent(exc: BaseException) -> bool:
    """Whether `exc` says the database is unreachable or too slow (not that the request was wrong)."""
    if isinstance(exc, (StoreUnavailable, sa.exc.TimeoutError, *_ABSENT)):
        return True
    # SQLAlchemy's wrappers of the driver's errors (a data error stays what it is).
    return isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError) or (
        isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated)


def _describe(exc: BaseException | None) -> str:
    return f"{type(exc).__name__}: {exc}".rstrip(": ")


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
    def shared(cls, engine: AsyncEngine, *, max_size: int = 10, timeout_s: float = 5.0) -> LazyPool:
        """The pool of `engine`: apps built on one engine (tests, tools) share its connections."""
        pool = _SHARED.get(engine)
        if pool is None:
            pool = _SHARED[engine] = cls(engine, max_size=max_size, timeout_s=timeout_s)
        return pool

    def __init__(self, engine: AsyncEngine, *, min_size: int = 2, max_size: int = 10, timeout_s: float = 5.0,
                 probe_s: float = 0.5) -> None:
        self._engine = engine
        self.timeout_s = timeout_s
        self._probe_s = probe_s
        self._min_size = min_size
        self._max_size = max_size
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()
        self._down: BaseException | None = None  # why the database is taken to be away (None: it answers)
        self._probe: asyncio.Task[None] | None = None
        self._closed = False

    async def get(self) -> asyncpg.Pool:
        """The pool, opened if needed (its first connections bounded by the connect timeout)."""
        if self._pool is not None:
            return self._pool
        async with self._lock:
            if self._pool is None:
                self._closed = False
                self._pool = await asyncpg.create_pool(
                    **connect_kwargs(self._engine), min_size=self._min_size, max_size=self._max_size,
                    init=_init, reset=_keep, command_timeout=self.timeout_s, timeout=self.timeout_s,
                    server_settings={"statement_timeout": str(int((self.timeout_s + 1.0) * 1000))},
                    # The statements are few and fixed: keep them prepared per connection.
                    statement_cache_size=256, max_inactive_connection_lifetime=300.0,
                )
            return self._pool

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection, checked out within the timeout; StoreUnavailable at once while the database is
        down. A connection whose work failed otherwise than with a plain SQL error is terminated."""
        self._check()
        try:
            pool = await self.get()
            conn: asyncpg.Connection = await pool.acquire(timeout=self.timeout_s)
        except Exception as exc:
            if is_absent(exc):
                raise self.unavailable(exc) from exc
            raise
        try:
            yield conn
        except BaseException as exc:
            # Timed out, cancelled (its caller gave up), lost: its protocol state is unknown, and a cancel
            # request, a reset or a close would wait on the server. A SQL error leaves it fine for reuse.
            if not isinstance(exc, asyncpg.PostgresError) or is_absent(exc):
                conn.terminate()
            if isinstance(exc, Exception) and is_absent(exc):
                raise self.unavailable(exc) from exc
            raise
        finally:
            await pool.release(conn)

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        async with self.acquire() as conn:
            rows: list[asyncpg.Record] = await conn.fetch(sql, *args)
            return rows

    async def fetchval(self, sql: str, *args: Any) -> Any:
        async with self.acquire() as conn:
            return await conn.fetchval(sql, *args)

    @contextlib.asynccontextmanager
    async def guard(self) -> AsyncIterator[None]:
        """Bound and translate database work done another way (SQLAlchemy): StoreUnavailable at once while
        the database is down, and for a block that fails for want of it or takes longer than the timeout."""
        self._check()
        try:
            # SQLAlchemy drops a connection cancelled in use (never reset or reused), but only after trying for
            # 2 s to close it gracefully: a block given up on takes timeout_s + 2 s, so it marks the database
            # down too, and the next ones fail at once.
            async with asyncio.timeout(self.timeout_s):
                yield
        except Exception as exc:
            if is_absent(exc):
                raise self.unavailable(exc) from exc
            raise

    def _check(self) -> None:
        """StoreUnavailable (caused by the failure that took it down) while the database is known to be down."""
        if self._down is not None:
            raise StoreUnavailable(f"the database is unavailable ({_describe(self._down)})") from self._down

    def unavailable(self, exc: BaseException) -> StoreUnavailable:
        """`exc` as StoreUnavailable; the database is marked down (statement timeouts of a database that does
        answer excepted) and a probe started to notice its return."""
        if isinstance(exc, StoreUnavailable):
            return exc
        if not isinstance(exc, asyncpg.QueryCanceledError):
            self._mark_down(exc)
        return StoreUnavailable(f"the database did not answer ({_describe(exc)})")

    def _mark_down(self, exc: BaseException) -> None:
        if self._closed:
            return
        if self._down is None:
            log.warning("store.database.down", error=_describe(exc))
        self._down = exc
        if self._probe is None or self._probe.done():
            # A process-wide loop: never under the context (request id, ...) of whichever request started it.
            self._probe = asyncio.create_task(self._until_back(), name="confctl.db_probe",
                                              context=contextvars.Context())

    async def _until_back(self) -> None:
        """Probe until the database answers, then let everyone through again."""
        while self._down is not None and not self._closed:
            if await self._answers():
                log.info("store.database.back", after=_describe(self._down))
                self._down = None
                return
            await asyncio.sleep(self._probe_s)

    async def _answers(self) -> bool:
        """One probe: a checkout and `SELECT 1`, bounded (a first failure may have been a one-off)."""
        conn: asyncpg.Connection | None = None
        try:
            pool = await self.get()
            conn = await pool.acquire(timeout=self.timeout_s)
            await conn.fetchval("SELECT 1", timeout=min(self.timeout_s, 1.0))
            await pool.release(conn)
            return True
        except Exception as exc:  # still away, whatever it says
            if conn is not None:
                conn.terminate()
                await pool.release(conn)
            self._down = exc
            return False

    async def connect(self, *, command_timeout_s: float | None = None) -> asyncpg.Connection:
        """A dedicated connection outside the pool (listeners, liveness locks, the rebuild), connected within
        the timeout; its statements are unbounded unless `command_timeout_s` (or their own `timeout=`)."""
        conn: asyncpg.Connection = await asyncpg.connect(**connect_kwargs(self._engine), timeout=self.timeout_s,
                                                         command_timeout=command_timeout_s)
        try:
            async with asyncio.timeout(self.timeout_s):
                await _init(conn)
        except BaseException:
            conn.terminate()
            raise
        return conn

    async def aclose(self) -> None:
        """Close the pool's connections (bounded: those that would not close in time are terminated)."""
        self._closed = True
        probe, self._probe = self._probe, None
        if probe is not None:
            probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await probe
        self._down = None
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), self.timeout_s)
            except (TimeoutError, *_ABSENT):
                pool.terminate()
