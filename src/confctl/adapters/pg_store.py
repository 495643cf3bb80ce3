"""The PostgreSQL event store, read model and idempotency store (SQLAlchemy Core on asyncpg)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from confctl.adapters.cursor import decode_cursor, encode_cursor
from confctl.adapters.pg_schema import (
    APPEND_LOCK_KEY,
    NOTIFY_CHANNEL,
    call_legs,
    conferences,
    dedupe_keys,
    events,
    idempotency_keys,
)
from confctl.service.ports import (
    AppendResult,
    ConcurrencyError,
    IdempotentAnswer,
    NewEvent,
    Page,
    Projector,
    ReadModelRow,
    StoredEvent,
)


def _stored(row: sa.Row[Any]) -> StoredEvent:
    m = row._mapping
    return StoredEvent(
        position=m["position"],
        stream_id=m["stream_id"],
        version=m["version"],
        type=m["type"],
        data=m["data"],
        metadata=m["metadata"],
        recorded_at=m["recorded_at"],
    )


class PostgresEventStore:
    """Implements EventStore, ReadModel and IdempotencyStore on one AsyncEngine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def append(
        self,
        stream_id: str,
        events_: Sequence[NewEvent],
        *,
        expected_version: int | None,
        dedupe_key: str | None = None,
        read_model: ReadModelRow | None = None,
    ) -> AppendResult:
        async with self.engine.begin() as conn:
            if dedupe_key is not None:
                # Blocks on a concurrent twin until it commits, then finds the key taken.
                taken = await conn.execute(
                    pg_insert(dedupe_keys)
                    .values(key=dedupe_key, stream_id=stream_id)
                    .on_conflict_do_nothing()
                    .returning(dedupe_keys.c.key)
                )
                if taken.first() is None:
                    return AppendResult(version=await self._version(conn, stream_id), events=[], duplicate=True)
            await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(APPEND_LOCK_KEY)))
            current = await self._version(conn, stream_id)
            if expected_version is not None and expected_version != current:
                raise ConcurrencyError(stream_id, expected_version, current)
            stored: list[StoredEvent] = []
            if events_:
                rows = await conn.execute(
                    sa.insert(events).returning(*events.c),
                    [
                        {
                            "stream_id": stream_id,
                            "version": current + i + 1,
                            "type": e.type,
                            "data": e.data,
                            "metadata": e.metadata,
                        }
                        for i, e in enumerate(events_)
                    ],
                )
                stored = sorted((_stored(r) for r in rows), key=lambda e: e.version)
            if read_model is not None:
                await self._write_row(conn, read_model)
            if stored:
                payload = json.dumps({"stream_id": stream_id, "position": stored[-1].position})
                await conn.execute(sa.select(sa.func.pg_notify(NOTIFY_CHANNEL, payload)))
            return AppendResult(version=current + len(stored), events=stored)

    @staticmethod
    async def _version(conn: AsyncConnection, stream_id: str) -> int:
        result = await conn.execute(
            sa.select(sa.func.coalesce(sa.func.max(events.c.version), 0)).where(events.c.stream_id == stream_id)
        )
        return int(result.scalar_one())

    @staticmethod
    async def _write_row(conn: AsyncConnection, row: ReadModelRow) -> None:
        values = {
            "id": row.stream_id,
            "status": row.status,
            "created_at": row.created_at,
            "version": row.version,
            "twilio_sid": row.twilio_sid,
            "document": dict(row.document),
        }
        stmt = pg_insert(conferences).values(**values)
        await conn.execute(
            stmt.on_conflict_do_update(index_elements=[conferences.c.id], set_={
                k: stmt.excluded[k] for k in values if k != "id"
            })
        )
        if row.call_sids:
            await conn.execute(
                pg_insert(call_legs)
                .values([{"call_sid": sid, "conference_id": row.stream_id} for sid in row.call_sids])
                .on_conflict_do_nothing()
            )

    async def read_stream(
        self, stream_id: str, *, after_version: int = 0, limit: int | None = None
    ) -> list[StoredEvent]:
        query = (
            sa.select(events)
            .where(events.c.stream_id == stream_id, events.c.version > after_version)
            .order_by(events.c.version)
        )
        if limit is not None:
            query = query.limit(limit)
        async with self.engine.connect() as conn:
            return [_stored(r) for r in await conn.execute(query)]

    async def read_all(self, *, after_position: int = 0, limit: int = 1000) -> list[StoredEvent]:
        query = sa.select(events).where(events.c.position > after_position).order_by(events.c.position).limit(limit)
        async with self.engine.connect() as conn:
            return [_stored(r) for r in await conn.execute(query)]

    async def stream_ids(self) -> list[str]:
        async with self.engine.connect() as conn:
            result = await conn.execute(
                sa.select(events.c.stream_id).group_by(events.c.stream_id).order_by(sa.func.min(events.c.position))
            )
            return [r.stream_id for r in result]

    async def get_document(self, stream_id: str) -> Mapping[str, Any] | None:
        async with self.engine.connect() as conn:
            result = await conn.execute(sa.select(conferences.c.document).where(conferences.c.id == stream_id))
            document: Mapping[str, Any] | None = result.scalar_one_or_none()
            return document

    async def list_documents(self, *, status: str | None, limit: int, cursor: str | None) -> Page:
        query = sa.select(conferences.c.id, conferences.c.created_at, conferences.c.document)
        if status is not None:
            query = query.where(conferences.c.status == status)
        if cursor is not None:
            created_at, stream_id = decode_cursor(cursor)
            query = query.where(sa.tuple_(conferences.c.created_at, conferences.c.id) < (created_at, stream_id))
        query = query.order_by(conferences.c.created_at.desc(), conferences.c.id.desc()).limit(limit + 1)
        async with self.engine.connect() as conn:
            rows = list(await conn.execute(query))
        page = rows[:limit]
        next_cursor = encode_cursor(page[-1].created_at, page[-1].id) if len(rows) > limit else None
        return Page(items=[r.document for r in page], next_cursor=next_cursor)

    async def stream_for_call(self, call_sid: str) -> str | None:
        async with self.engine.connect() as conn:
            result = await conn.execute(
                sa.select(call_legs.c.conference_id).where(call_legs.c.call_sid == call_sid)
            )
            found: str | None = result.scalar_one_or_none()
            return found

    async def stream_for_twilio_sid(self, conference_sid: str) -> str | None:
        async with self.engine.connect() as conn:
            result = await conn.execute(
                sa.select(conferences.c.id).where(conferences.c.twilio_sid == conference_sid).limit(1)
            )
            found: str | None = result.scalar_one_or_none()
            return found

    async def stream_for_transfer(self, transfer_id: str) -> str | None:
        async with self.engine.connect() as conn:
            result = await conn.execute(
                sa.select(conferences.c.id)
                .where(conferences.c.document["transfers"].contains([{"id": transfer_id}]))
                .limit(1)
            )
            found: str | None = result.scalar_one_or_none()
            return found

    async def rebuild(self, project: Projector) -> int:
        async with self.engine.begin() as conn:
            # Same lock as appends: no event lands between the read of the log and the swap.
            await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(APPEND_LOCK_KEY)))
            log = [_stored(r) for r in await conn.execute(sa.select(events).order_by(events.c.position))]
            rows = project(log)
            await conn.execute(sa.delete(call_legs))
            await conn.execute(sa.delete(conferences))
            for row in rows:
                await self._write_row(conn, row)
            return len(rows)

    async def get_answer(self, scope: str, key: str) -> IdempotentAnswer | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(idempotency_keys).where(idempotency_keys.c.scope == scope, idempotency_keys.c.key == key)
                )
            ).first()
        if row is None:
            return None
        return IdempotentAnswer(fingerprint=row.fingerprint, status=row.status, body=row.body)

    async def reserve(self, scope: str, key: str, fingerprint: str) -> IdempotentAnswer | None:
        async with self.engine.begin() as conn:
            taken = await conn.execute(
                pg_insert(idempotency_keys)
                .values(scope=scope, key=key, fingerprint=fingerprint, status=0, body={})
                .on_conflict_do_nothing()
                .returning(idempotency_keys.c.key)
            )
            if taken.first() is not None:
                return None
        return await self.get_answer(scope, key)

    async def complete(self, scope: str, key: str, answer: IdempotentAnswer) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                sa.update(idempotency_keys)
                .where(idempotency_keys.c.scope == scope, idempotency_keys.c.key == key)
                .values(fingerprint=answer.fingerprint, status=answer.status, body=dict(answer.body))
            )

    async def release(self, scope: str, key: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                sa.delete(idempotency_keys).where(
                    idempotency_keys.c.scope == scope, idempotency_keys.c.key == key, idempotency_keys.c.status == 0
                )
            )
