"""Appends as one statement, with group commit: `SELECT * FROM confctl_append($1)` over a whole batch.

Callers queue their appends; a fixed number of committers (the bound on in-flight appends toward
PostgreSQL) each take every append waiting (FIFO, at most `max_batch`, one per stream) and run them as one
statement in one transaction: one round trip and one WAL flush for the lot. Nobody waits for company: an
append that finds a committer idle goes at once, alone; under load the queue fills while the committers are
busy, and batches grow by themselves (the "natural batching" of group commit). Each caller's future is
resolved only after the batch committed, so a webhook is answered only once its fact is durable.

A version conflict, a repeated dedupe key or a data error concerns one append only: the function reports the
first two per item, and a batch that fails with a database error is rolled back whole and its appends run
again one by one, so only the culprit fails. A lost connection fails the batch's callers: whether it
committed is unknown, and the caller (not this module) decides what a retry may do.

Nobody waits longer than `wait_s` (the database frozen, every committer stuck on its statement): the caller
gets `StoreUnavailable`. An append whose caller gave up (that bound, or the caller cancelled) before it was
sent is never sent, so it is certainly not stored; one already sent is `unknown` (it may commit when the
server comes back).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson
import structlog

from confctl.adapters.pg_pool import LazyPool, is_absent
from confctl.adapters.pg_schema import NOTIFY_CHANNEL
from confctl.service.outage import StoreUnavailable
from confctl.service.ports import (
    AppendResult,
    ConcurrencyError,
    EffectCompletion,
    NewEffect,
    NewEvent,
    ReadModelRow,
    StoredEvent,
)

log = structlog.get_logger(__name__)

APPEND_SQL = "SELECT idx, status, version, first_position, recorded_at, effect_ids FROM confctl_append($1::jsonb)"
# After the commit, in a transaction of its own: a NOTIFY inside the append's transaction would hold the
# cluster-wide notification lock across its WAL flush and serialize every committer (see migration 0002).
NOTIFY_SQL = f"SELECT pg_notify('{NOTIFY_CHANNEL}', payload) FROM unnest($1::text[]) AS payload"


@dataclass(slots=True)
class PendingAppend:
    """One caller's append, waiting for its batch."""

    stream_id: str
    events: Sequence[NewEvent]
    expected_version: int | None
    dedupe_key: str | None
    read_model: ReadModelRow | None
    effects: Sequence[NewEffect]
    completes: Sequence[EffectCompletion]
    future: asyncio.Future[AppendResult] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    sent: bool = False  # its statement went to the database: a failure leaves its outcome unknown

    def as_json(self) -> dict[str, Any]:
        """The item as `confctl_append` reads it."""
        item: dict[str, Any] = {
            "stream_id": self.stream_id,
            "expected_version": self.expected_version,
            "dedupe_key": self.dedupe_key,
            "events": [{"type": e.type, "data": e.data, "metadata": e.metadata} for e in self.events],
        }
        if self.read_model is not None:
            row = self.read_model
            item["row"] = {"status": row.status, "created_at": row.created_at.isoformat(), "version": row.version,
                           "twilio_sid": row.twilio_sid, "document": row.document}
            item["call_sids"] = list(row.call_sids if row.new_call_sids is None else row.new_call_sids)
        if self.effects:
            item["effects"] = [{"plan_id": f.plan_id, "seq": f.seq, "kind": f.kind, "payload": f.payload,
                                "metadata": f.metadata, "transfer_id": f.transfer_id, "claimed_by": f.claimed_by}
                               for f in self.effects]
        if self.completes:
            item["completes"] = [{"id": c.effect_id, "outcome": c.outcome, "error": c.error,
                                  "skip_rest": c.skip_rest} for c in self.completes]
        return item

    def resolve(self, status: str, version: int, first_position: int | None, recorded_at: Any,
                effect_ids: Sequence[int] | None) -> None:
        """Answer the caller from the function's row for this item."""
        if self.future.done():
            return
        if status == "duplicate":
            self.future.set_result(AppendResult(version=version, events=[], duplicate=True))
        elif status == "conflict":
            self.future.set_exception(ConcurrencyError(self.stream_id, self.expected_version or 0, version))
        else:
            first_version = version - len(self.events) + 1
            stored = [
                StoredEvent(position=(first_position or 0) + i, stream_id=self.stream_id, version=first_version + i,
                            type=e.type, data=e.data, metadata=e.metadata, recorded_at=recorded_at)
                for i, e in enumerate(self.events)
            ]
            self.future.set_result(AppendResult(version=version, events=stored, effect_ids=list(effect_ids or ())))

    def expire(self, wait_s: float) -> None:
        """The caller waited long enough: StoreUnavailable (an append not sent yet never will be)."""
        self.fail(StoreUnavailable(f"the append was not stored within {wait_s:g} s"))

    def fail(self, exc: BaseException) -> None:
        if self.future.done():
            return
        if isinstance(exc, StoreUnavailable):  # each caller is told whether its own append may have been stored
            cause = exc.__cause__
            exc = StoreUnavailable(str(exc), unknown=self.sent)
            exc.__cause__ = cause
        self.future.set_exception(exc)


class GroupCommitter:
    """Bounded, FIFO, batched appends through `confctl_append`."""

    def __init__(self, pool: LazyPool, *, committers: int = 4, max_batch: int = 64,
                 wait_s: float | None = None) -> None:
        self._pool = pool
        self._committers = committers
        self._max_batch = max_batch
        self.wait_s = wait_s if wait_s is not None else 2 * pool.timeout_s  # a checkout and a statement
        self._queue: deque[PendingAppend] = deque()
        self._wakeup = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False
        self.on_batch: Callable[[int], None] | None = None  # told each committed batch's size (metrics)
        self.on_stored: Callable[[NewEvent], None] | None = None  # told each event committed (metrics)

    async def append(self, pending: PendingAppend) -> AppendResult:
        """Queue one append and wait until its batch has committed."""
        if self._closed:
            raise RuntimeError("the store is closed")
        self._start()
        self._queue.append(pending)
        self._wakeup.set()
        # A caller cancelled cancels the future too: either way a done future is never sent (`_execute`).
        timer = asyncio.get_running_loop().call_later(self.wait_s, pending.expire, self.wait_s)
        try:
            return await pending.future
        finally:
            timer.cancel()

    def _start(self) -> None:
        self._tasks = [t for t in self._tasks if not t.done()]
        while len(self._tasks) < self._committers:
            # A process-wide loop: never under the context (request id, ...) of whichever request started it.
            self._tasks.append(asyncio.create_task(self._run(), name="confctl.group_commit",
                                                   context=contextvars.Context()))

    def _take(self) -> list[PendingAppend]:
        """Up to max_batch appends in arrival order, one per stream (a stream's next waits for the next batch)."""
        batch: list[PendingAppend] = []
        streams: set[str] = set()
        kept: deque[PendingAppend] = deque()
        while self._queue and len(batch) < self._max_batch:
            item = self._queue.popleft()
            if item.future.done():  # its caller gave up
                continue
            if item.stream_id in streams:
                kept.append(item)
            else:
                streams.add(item.stream_id)
                batch.append(item)
        kept.extend(self._queue)
        self._queue = kept
        return batch

    async def _run(self) -> None:
        while not self._closed:
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            batch = self._next_batch()
            if not batch:  # every caller waiting had given up
                continue
            try:
                # One connection for the whole busy spell: under load a committer never queues for the pool
                # (nor makes readers queue), and it gives the connection back once idle. Bounded, and at once
                # StoreUnavailable while the database is known to be down.
                async with self._pool.acquire() as conn:
                    while batch:
                        await self._commit(conn, batch)
                        batch = self._next_batch() if self._queue and not self._closed else []
            except Exception as exc:  # every caller must hear of it, whatever it is (no database, a lost one...)
                for item in batch:
                    item.fail(exc)
                if not isinstance(exc, StoreUnavailable | asyncpg.PostgresError):
                    log.error("store.committer.failed", error=repr(exc))

    def _next_batch(self) -> list[PendingAppend]:
        batch = self._take()
        if self._queue:
            self._wakeup.set()  # more waiting: another committer may take them meanwhile
        return batch

    async def _commit(self, conn: asyncpg.Connection, batch: list[PendingAppend]) -> None:
        try:
            await self._execute(conn, batch)
        except asyncpg.PostgresError as exc:
            if len(batch) == 1 or is_absent(exc):  # the server going away is nobody's fault in the batch
                raise
            # Rolled back whole: run each alone, so that only the append at fault fails.
            log.warning("store.batch.retry_one_by_one", size=len(batch), error=str(exc))
            for item in batch:
                try:
                    await self._execute(conn, [item])
                except asyncpg.PostgresError as single:  # this caller's error
                    if is_absent(single):
                        raise
                    item.fail(single)

    async def _execute(self, conn: asyncpg.Connection, batch: list[PendingAppend]) -> None:
        # Callers may have given up while this batch waited for a connection: theirs stay unsent. Marked sent
        # with no await in between, so no caller is told "not stored" about an append that goes out.
        batch = [item for item in batch if not item.future.done()]
        if not batch:
            return
        for item in batch:
            item.sent = True
        payload = [item.as_json() for item in batch]  # encoded by the pool's jsonb codec (orjson)
        rows = await conn.fetch(APPEND_SQL, payload)
        if self.on_batch is not None:
            self.on_batch(len(batch))
        notes = []
        for row in rows:
            item = batch[row["idx"]]
            item.resolve(row["status"], row["version"], row["first_position"], row["recorded_at"],
                         row["effect_ids"])
            if row["status"] == "ok" and row["first_position"] is not None:
                last = row["first_position"] + len(item.events) - 1
                notes.append(orjson.dumps({"stream_id": item.stream_id, "position": last}).decode())
                if self.on_stored is not None:
                    for event in item.events:
                        self.on_stored(event)
        for item in batch:  # never left waiting, whatever the function returned
            item.fail(RuntimeError("confctl_append returned no row for an append"))
        if notes:
            # Only a wake-up: followers re-read the store, and poll too, so one lost here (a crash right
            # after the commit, a failed statement) costs them a little delay, never an event. It must
            # not fail the batch either: the appends are committed and answered.
            try:
                await conn.execute(NOTIFY_SQL, notes)
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
                log.warning("store.notify.failed", error=str(exc))

    async def aclose(self) -> None:
        """Stop the committers; appends still queued fail."""
        self._closed = True
        self._wakeup.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        while self._queue:
            self._queue.popleft().fail(RuntimeError("the store is closed"))
