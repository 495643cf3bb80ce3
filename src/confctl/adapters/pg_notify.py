"""The Notifier on PostgreSQL LISTEN: one connection per process wakes this process's live followers.

Every committed batch of appends is followed by `NOTIFY confctl_events` (`pg_append`: after the commit, never
for a rollback), which PostgreSQL delivers to every listening session, whichever process made the change. The
listener holds one dedicated asyncpg connection, outside the engine's pool: a connection that waits forever
would otherwise take a pool slot, and one left inside a transaction by the pool would hold notifications back
until it ended.

It starts on first use (tests drive the app without its lifespan) and reconnects by itself: connecting and
every statement are bounded, and a connection given up on is terminated, never closed gracefully (against a
frozen server a graceful close would wait as long as the freeze, and the listener with it). A notification
is only a wake-up: followers re-read the store, and poll as well, so one lost while reconnecting costs a
little delay and nothing else; after a reconnect every follower is woken to look again at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from confctl.adapters.pg_pool import connect_kwargs
from confctl.adapters.pg_schema import NOTIFY_CHANNEL
from confctl.service.live import LocalNotifier, Subscription

log = structlog.get_logger(__name__)

class PgNotifier:
    """Implements Notifier: LISTEN on one connection, fan-out to the subscriptions of this process."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        channel: str = NOTIFY_CHANNEL,
        reconnect_s: float = 1.0,
        ready_timeout_s: float = 5.0,
        check_s: float = 30.0,
        timeout_s: float = 5.0,
    ) -> None:
        """`reconnect_s`: pause between connection attempts; `ready_timeout_s`: how long the first subscriber
        waits for LISTEN to be in place (after that it follows by polling alone); `check_s`: how often an
        idle connection is checked, so a silently dead one is noticed; `timeout_s`: the bound on connecting
        and on each statement.
        """
        self.local = LocalNotifier()
        self._engine = engine
        self._channel = channel
        self._reconnect_s = reconnect_s
        self._ready_timeout_s = ready_timeout_s
        self._check_s = check_s
        self._timeout_s = timeout_s
        self._task: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()
        self._backend_pid: int | None = None
        self._closed = False

    @property
    def subscribers(self) -> int:
        """Open subscriptions in this process."""
        return self.local.subscribers

    @property
    def backend_pid(self) -> int | None:
        """The PostgreSQL backend of the listening connection while it listens (operators, tests)."""
        return self._backend_pid if self._listening.is_set() else None

    @asynccontextmanager
    async def subscribe(self, stream_id: str | None) -> AsyncIterator[Subscription]:
        """Be woken for `stream_id` (None: every stream); starts the listener on first use."""
        await self.start()
        async with self.local.subscribe(stream_id) as subscription:
            yield subscription

    async def start(self) -> None:
        """Start listening unless already started; wait (bounded) until LISTEN is in place."""
        if self._closed:
            raise RuntimeError("the notifier is closed")
        if self._task is None or self._task.done():
            # A process-wide loop: never under the context (request id, ...) of whichever request started it.
            self._task = asyncio.create_task(self._run(), name="confctl.pg_notify", context=contextvars.Context())
        if not self._listening.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._listening.wait(), self._ready_timeout_s)

    async def aclose(self) -> None:
        """Stop listening and close the connection."""
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            stream_id = json.loads(payload)["stream_id"]
        except (ValueError, KeyError, TypeError):
            stream_id = None  # not ours to parse: wake everyone rather than miss someone
        self.local.publish(stream_id if isinstance(stream_id, str) else None)

    async def _run(self) -> None:
        while True:
            try:
                conn: asyncpg.Connection = await asyncpg.connect(
                    **connect_kwargs(self._engine), timeout=self._timeout_s, command_timeout=self._timeout_s)
            except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
                log.warning("live.listen.connect_failed", error=str(exc))
                await asyncio.sleep(self._reconnect_s)
                continue
            try:
                await self._listen(conn)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                log.warning("live.listen.lost", error=str(exc))
            finally:
                self._listening.clear()
                self._backend_pid = None
                conn.terminate()
            await asyncio.sleep(self._reconnect_s)

    async def _listen(self, conn: asyncpg.Connection) -> None:
        """Listen until the connection is lost."""
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        await conn.add_listener(self._channel, self._on_notify)
        self._backend_pid = conn.get_server_pid()
        self._listening.set()
        log.info("live.listen.started", channel=self._channel)
        # Anything may have been stored while nobody listened here.
        self.local.publish(None)
        while not lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), self._check_s)
            if not lost.is_set():
                # Idle for a while: a peer that vanished without closing is only found by talking to it.
                await conn.fetchval("SELECT 1", timeout=self._timeout_s)
        log.warning("live.listen.lost", channel=self._channel)
