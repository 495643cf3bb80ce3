"""The PostgreSQL event store, read model and idempotency store.

Appends go through the group committer (`pg_append`), stream and feed reads through asyncpg's pool with
prepared statements; the admin paths (listing, idempotency keys) read better in SQLAlchemy Core; the rebuild
lives in `pg_rebuild`. Every path is bounded by the pool's timeout and raises StoreUnavailable when the
database is away (`pg_pool`): the asyncpg ones through its guarded checkout, the SQLAlchemy ones in its guard.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from confctl.adapters.cursor import decode_cursor, encode_cursor
from confctl.adapters.pg_append import GroupCommitter, PendingAppend
from confctl.adapters.pg_outbox import worker_is_dead
from confctl.adapters.pg_pool import LazyPool
from confctl.adapters.pg_schema import (
    POSITION_SHIFT,
    conferences,
    events,
    idempotency_keys,
)
from confctl.service.ports import (
    AppendResult,
    EffectCompletion,
    IdempotentAnswer,
    NewEffect,
    NewEvent,
    Page,
    Projector,
    ReadModelRow,
    StoredEvent,
)


def _stored(row: Any) -> StoredEvent:
    m = row._mapping if isinstance(row, sa.Row) else row
    return StoredEvent(
        position=m["position"],
        stream_id=m["stream_id"],
        version=m["version"],
        type=m["type"],
        data=m["data"],
        metadata=m["metadata"],
        recorded_at=m["recorded_at"],
    )


_EVENT_COLUMNS = "position, stream_id, version, type, data, metadata, recorded_at"
READ_STREAM_SQL = (
    f"SELECT {_EVENT_COLUMNS} FROM events WHERE stream_id = $1 AND version > $2 ORDER BY version LIMIT $3"
)
# Only positions of finished transactions: any transaction still running has an id >= xmin, so its positions
# are >= xmin << POSITION_SHIFT, and every transaction that starts later gets a larger id still.
READ_ALL_SQL = (
    f"SELECT {_EVENT_COLUMNS} FROM events WHERE position > $1"
    f" AND position < (pg_snapshot_xmin(pg_current_snapshot())::text::bigint << {POSITION_SHIFT})"
    " ORDER BY position LIMIT $2"
)
NO_LIMIT = 2**62


TAKE_OVER_KEY_SQL = (
    "UPDATE idempotency_keys SET owner = $4 WHERE scope = $1 AND key = $2 AND status = 0 AND owner = $3"
    " RETURNING key"
)


class PostgresEventStore:
    """Implements EventStore, ReadModel and IdempotencyStore: asyncpg on the hot paths, SQLAlchemy elsewhere."""

    def __init__(self, engine: AsyncEngine, pool: LazyPool | None = None, *, committers: int = 4,
                 max_batch: int = 64, append_wait_s: float | None = None) -> None:
        self.engine = engine
        self.pool = pool or LazyPool(engine)
        self.committer = GroupCommitter(self.pool, committers=committers, max_batch=max_batch, wait_s=append_wait_s)

    async def aclose(self) -> None:
        """Stop the committers and close the pool (the engine is its owner's)."""
        await self.committer.aclose()
        await self.pool.aclose()

    async def append(
        self,
        stream_id: str,
        events_: Sequence[NewEvent],
        *,
        expected_version: int | None,
        dedupe_key: str | None = None,
        read_model: ReadModelRow | None = None,
        effects: Sequence[NewEffect] = (),
        completes: Sequence[EffectCompletion] = (),
    ) -> AppendResult:
        return await self.committer.append(PendingAppend(
            stream_id=stream_id, events=events_, expected_version=expected_version, dedupe_key=dedupe_key,
            read_model=read_model, effects=effects, completes=completes,
        ))

    async def read_stream(
        self, stream_id: str, *, after_version: int = 0, limit: int | None = None
    ) -> list[StoredEvent]:
        rows = await self.pool.fetch(READ_STREAM_SQL, stream_id, after_version, NO_LIMIT if limit is None else limit)
        return [_stored(r) for r in rows]

    async def read_all(self, *, after_position: int = 0, limit: int = 1000) -> list[StoredEvent]:
        return [_stored(r) for r in await self.pool.fetch(READ_ALL_SQL, after_position, limit)]

    async def stream_ids(self) -> list[str]:
        async with self.pool.guard(), self.engine.connect() as conn:
            result = await conn.execute(
                sa.select(events.c.stream_id).group_by(events.c.stream_id).order_by(sa.func.min(events.c.position))
            )
            return [r.stream_id for r in result]

    async def get_document(self, stream_id: str) -> Mapping[str, Any] | None:
        document: Mapping[str, Any] | None = await self.pool.fetchval(
            "SELECT document FROM conferences WHERE id = $1", stream_id)
        return document

    async def list_documents(self, *, status: str | None, limit: int, cursor: str | None) -> Page:
        query = sa.select(conferences.c.id, conferences.c.created_at, conferences.c.document)
        if status is not None:
            query = query.where(conferences.c.status == status)
        if cursor is not None:
            created_at, stream_id = decode_cursor(cursor)
            query = query.where(sa.tuple_(conferences.c.created_at, conferences.c.id) < (created_at, stream_id))
        query = query.order_by(conferences.c.created_at.desc(), conferences.c.id.desc()).limit(limit + 1)
        async with self.pool.guard(), self.engine.connect() as conn:
            rows = list(await conn.execute(query))
        page = rows[:limit]
        next_cursor = encode_cursor(page[-1].created_at, page[-1].id) if len(rows) > limit else None
        return Page(items=[r.document for r in page], next_cursor=next_cursor)

    async def stream_for_call(self, call_sid: str) -> str | None:
        found: str | None = await self.pool.fetchval(
            "SELECT conference_id FROM call_legs WHERE call_sid = $1", call_sid)
        return found

    async def stream_for_twilio_sid(self, conference_sid: str) -> str | None:
        async with self.pool.guard(), self.engine.connect() as conn:
            result = await conn.execute(
                sa.select(conferences.c.id).where(conferences.c.twilio_sid == conference_sid).limit(1)
            )
            found: str | None = result.scalar_one_or_none()
            return found

    async def live_conferences(self) -> list[str]:
        rows = await self.pool.fetch("SELECT id FROM conferences WHERE status <> 'completed' ORDER BY created_at")
        return [r["id"] for r in rows]

    async def moving_transfers(self) -> list[str]:
        rows = await self.pool.fetch(
            "SELECT id FROM conferences WHERE status <> 'completed'"
            " AND (document->'transfers' @> '[{\"state\": \"dialing\"}]'"
            " OR document->'transfers' @> '[{\"state\": \"consulting\"}]') ORDER BY created_at")
        return [r["id"] for r in rows]

    async def stream_for_transfer(self, transfer_id: str) -> str | None:
        async with self.pool.guard(), self.engine.connect() as conn:
            result = await conn.execute(
                sa.select(conferences.c.id)
                .where(conferences.c.document["transfers"].contains([{"id": transfer_id}]))
                .limit(1)
            )
            found: str | None = result.scalar_one_or_none()
            return found

    async def rebuild(self, project: Projector) -> int:
        # Imported when used: only `confctl rebuild-projections` needs the rebuild machinery.
        from confctl.adapters.pg_rebuild import rebuild_read_model

        return await rebuild_read_model(self.pool, project)

    async def get_answer(self, scope: str, key: str) -> IdempotentAnswer | None:
        async with self.pool.guard(), self.engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(idempotency_keys).where(idempotency_keys.c.scope == scope, idempotency_keys.c.key == key)
                )
            ).first()
        if row is None:
            return None
        return IdempotentAnswer(fingerprint=row.fingerprint, status=row.status, body=row.body, owner=row.owner)

    async def reserve(self, scope: str, key: str, fingerprint: str, owner: str = "") -> IdempotentAnswer | None:
        async with self.pool.guard(), self.engine.begin() as conn:
            taken = await conn.execute(
                pg_insert(idempotency_keys)
                .values(scope=scope, key=key, fingerprint=fingerprint, status=0, body={}, owner=owner or None)
                .on_conflict_do_nothing()
                .returning(idempotency_keys.c.key)
            )
            if taken.first() is not None:
                return None
        return await self.get_answer(scope, key)

    async def take_over(self, scope: str, key: str, dead_owner: str, owner: str) -> bool:
        async with self.pool.acquire() as conn:
            if not await worker_is_dead(conn, dead_owner):
                return False
            taken = await conn.fetchval(TAKE_OVER_KEY_SQL, scope, key, dead_owner, owner)
        return taken is not None

    async def complete(self, scope: str, key: str, answer: IdempotentAnswer) -> None:
        async with self.pool.guard(), self.engine.begin() as conn:
            await conn.execute(
                sa.update(idempotency_keys)
                .where(idempotency_keys.c.scope == scope, idempotency_keys.c.key == key)
                .values(fingerprint=answer.fingerprint, status=answer.status, body=dict(answer.body))
            )

    async def release(self, scope: str, key: str) -> None:
        async with self.pool.guard(), self.engine.begin() as conn:
            await conn.execute(
                sa.delete(idempotency_keys).where(
                    idempotency_keys.c.scope == scope, idempotency_keys.c.key == key, idempotency_keys.c.status == 0
                )
            )
