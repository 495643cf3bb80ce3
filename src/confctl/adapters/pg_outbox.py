"""The outbox on PostgreSQL: which worker is alive, and taking over the effects of those that are not.

A worker is alive while it holds a session advisory lock named after it, on a connection of its own: the
lock goes when its process dies (PostgreSQL ends the session as soon as the socket closes, kill -9 included),
so another worker's `pg_try_advisory_lock` on that name succeeds exactly when the owner is gone. No lease to
wait out, no clock to trust. A worker that lost its connection takes its lock again when it reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

import asyncpg
import structlog

from confctl.adapters.pg_pool import LazyPool
from confctl.adapters.pg_schema import SWEEP_LOCK_CLASS, WORKER_LOCK_CLASS
from confctl.service.ports import PendingEffect, UnfinishedEffect

log = structlog.get_logger(__name__)

_COLUMNS = "id, stream_id, plan_id, seq, kind, payload, metadata, transfer_id, attempts"
CLAIMERS_SQL = "SELECT DISTINCT claimed_by FROM effects WHERE outcome IS NULL AND claimed_by IS DISTINCT FROM $1"
TRY_LOCK_SQL = "SELECT pg_try_advisory_lock($1, hashtext($2))"
UNLOCK_SQL = "SELECT pg_advisory_unlock($1, hashtext($2))"
# Two workers taking over the same dead one: the second finds the rows claimed anew and takes none.
TAKE_OVER_SQL = (
    "UPDATE effects SET claimed_by = $1, claimed_until = now(), attempts = attempts + 1"
    " WHERE outcome IS NULL AND (claimed_by = ANY($2::text[]) OR ($3 AND claimed_by IS NULL))"
    f" RETURNING {_COLUMNS}"
)
PENDING_SQL = f"SELECT {_COLUMNS} FROM effects WHERE plan_id = $1 AND outcome IS NULL ORDER BY seq"
STALE_SQL = (
    f"SELECT {_COLUMNS} FROM effects WHERE outcome IS NULL AND claimed_by = $1"
    " AND created_at < now() - make_interval(secs => $2) ORDER BY id"
)
POSTPONE_SQL = (
    "UPDATE effects SET attempts = attempts + 1, error = $2, due_at = now() + make_interval(secs => $3)"
    " WHERE id = $1 AND outcome IS NULL"
)
UNFINISHED_SQL = (
    "SELECT stream_id, kind, payload->>'label' AS label, transfer_id, attempts, error, due_at FROM effects"
    " WHERE stream_id = ANY($1::text[]) AND outcome IS NULL ORDER BY id"
)


async def worker_is_dead(conn: asyncpg.Connection, worker_id: str) -> bool:
    """Whether the process named `worker_id` is gone: nobody holds its liveness lock (taken and given back at
    once here, on the same connection)."""
    if not await conn.fetchval(TRY_LOCK_SQL, WORKER_LOCK_CLASS, worker_id):
        return False
    await conn.fetchval(UNLOCK_SQL, WORKER_LOCK_CLASS, worker_id)
    return True


def _pending(row: asyncpg.Record) -> PendingEffect:
    return PendingEffect(id=row["id"], stream_id=row["stream_id"], plan_id=row["plan_id"], seq=row["seq"],
                         kind=row["kind"], payload=row["payload"], metadata=row["metadata"],
                         transfer_id=row["transfer_id"], attempts=row["attempts"])


class PgOutbox:
    """Implements Outbox, and keeps this worker's liveness lock."""

    def __init__(self, pool: LazyPool, worker_id: str, *, reconnect_s: float = 1.0) -> None:
        self._pool = pool
        self.worker_id = worker_id
        self._reconnect_s = reconnect_s
        self._alive = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def alive(self, timeout_s: float = 5.0) -> bool:
        """Hold the liveness lock (taken on first call); False when it could not be taken in time."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._hold(), name="confctl.outbox.alive")
        if not self._alive.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._alive.wait(), timeout_s)
        return self._alive.is_set()

    async def _hold(self) -> None:
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await self._pool.connect()
                await self._hold_on(conn)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                log.warning("outbox.alive.lost", worker_id=self.worker_id, error=repr(exc))
            finally:
                self._alive.clear()
                if conn is not None and not conn.is_closed():
                    conn.terminate()
            await asyncio.sleep(self._reconnect_s)

    async def _hold_on(self, conn: asyncpg.Connection) -> None:
        """Take the lock on `conn` and keep it until the connection is lost."""
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        await conn.execute("SELECT pg_advisory_lock($1, hashtext($2))", WORKER_LOCK_CLASS, self.worker_id)
        self._alive.set()
        while not lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), 10.0)
            if not lost.is_set():
                await conn.fetchval("SELECT 1", timeout=10.0)  # a peer that vanished is found by talking to it

    async def orphans(self, worker_id: str) -> list[PendingEffect]:
        if not await self.alive():
            return []  # not holding our own lock: we might take over effects that are ours to finish
        async with self._pool.acquire() as conn:
            claimers = [r["claimed_by"] for r in await conn.fetch(CLAIMERS_SQL, worker_id)]
            if not claimers:
                return []
            dead = [c for c in claimers if c is not None and await worker_is_dead(conn, c)]
            unclaimed = None in claimers
            if not dead and not unclaimed:
                return []
            rows = await conn.fetch(TAKE_OVER_SQL, worker_id, dead, unclaimed)
        return sorted((_pending(r) for r in rows), key=lambda e: e.id)

    async def stale(self, worker_id: str, older_than_s: float) -> list[PendingEffect]:
        return [_pending(r) for r in await self._pool.fetch(STALE_SQL, worker_id, older_than_s)]

    async def pending(self, plan_id: str) -> list[PendingEffect]:
        return [_pending(r) for r in await self._pool.fetch(PENDING_SQL, plan_id)]

    @contextlib.asynccontextmanager
    async def exclusive(self, name: str) -> AsyncIterator[bool]:
        """Hold the cluster-wide lock `name` for the block if nobody else does (SweepLock)."""
        async with self._pool.acquire() as conn:
            mine = bool(await conn.fetchval(TRY_LOCK_SQL, SWEEP_LOCK_CLASS, name))
            try:
                yield mine
            finally:
                if mine:
                    await conn.fetchval(UNLOCK_SQL, SWEEP_LOCK_CLASS, name)

    async def postpone(self, effect_id: int, error: str, delay_s: float) -> None:
        await self._pool.fetchval(POSTPONE_SQL, effect_id, error[:500], delay_s)

    async def unfinished(self, stream_ids: Sequence[str]) -> list[UnfinishedEffect]:
        if not stream_ids:
            return []
        return [UnfinishedEffect(stream_id=r["stream_id"], kind=r["kind"], label=r["label"],
                                 transfer_id=r["transfer_id"], attempts=r["attempts"], error=r["error"],
                                 due_at=r["due_at"])
                for r in await self._pool.fetch(UNFINISHED_SQL, list(stream_ids))]

    async def aclose(self) -> None:
        """Release the liveness lock (the connection closes)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
