"""An in-memory event store and read model: same contract as PostgreSQL, for unit tests and tools."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from confctl.adapters.cursor import decode_cursor, encode_cursor
from confctl.service.ports import (
    AppendResult,
    ConcurrencyError,
    EffectCompletion,
    IdempotentAnswer,
    NewEffect,
    NewEvent,
    Page,
    PendingEffect,
    Projector,
    ReadModelRow,
    StoredEvent,
    UnfinishedEffect,
)

REBUILD_CHUNK_STREAMS = 500


class MemoryEventStore:
    """Streams, global order, dedupe keys, read model and idempotent answers in dicts."""

    def __init__(self) -> None:
        self._events: list[StoredEvent] = []
        self._streams: dict[str, list[StoredEvent]] = {}
        self._dedupe: set[str] = set()
        self._rows: dict[str, ReadModelRow] = {}
        self._answers: dict[tuple[str, str], IdempotentAnswer] = {}
        self._effects: dict[int, tuple[PendingEffect, str | None]] = {}
        self._outcomes: dict[int, str] = {}
        self._errors: dict[int, str] = {}
        self.dead_workers: set[str | None] = {None}
        self._lock = asyncio.Lock()
        self.listeners: list[asyncio.Queue[StoredEvent]] = []

    async def append(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        *,
        expected_version: int | None,
        dedupe_key: str | None = None,
        read_model: ReadModelRow | None = None,
        effects: Sequence[NewEffect] = (),
        completes: Sequence[EffectCompletion] = (),
    ) -> AppendResult:
        async with self._lock:
            stream = self._streams.get(stream_id, [])
            current = len(stream)
            if dedupe_key is not None and dedupe_key in self._dedupe:
                return AppendResult(version=current, events=[], duplicate=True)
            if expected_version is not None and expected_version != current:
                raise ConcurrencyError(stream_id, expected_version, current)
            now = datetime.now(UTC)
            stored = [
                StoredEvent(
                    position=len(self._events) + i + 1,
                    stream_id=stream_id,
                    version=current + i + 1,
                    type=e.type,
                    data=json.loads(json.dumps(e.data)),
                    metadata=json.loads(json.dumps(e.metadata)),
                    recorded_at=now,
                )
                for i, e in enumerate(events)
            ]
            self._events.extend(stored)
            self._streams[stream_id] = stream + stored
            if dedupe_key is not None:
                self._dedupe.add(dedupe_key)
            if read_model is not None:
                self._rows[stream_id] = read_model
            for queue in self.listeners:
                for event in stored:
                    queue.put_nowait(event)
            ids = [self._queue_effect(stream_id, effect) for effect in effects]
            for completion in completes:
                self._complete_effect(completion)
            return AppendResult(version=current + len(stored), events=stored, effect_ids=ids)

    def _queue_effect(self, stream_id: str, effect: NewEffect) -> int:
        effect_id = len(self._effects) + 1
        self._effects[effect_id] = (PendingEffect(
            id=effect_id, stream_id=stream_id, plan_id=effect.plan_id, seq=effect.seq, kind=effect.kind,
            payload=effect.payload, metadata=effect.metadata, transfer_id=effect.transfer_id, attempts=0,
        ), effect.claimed_by)
        return effect_id

    def _complete_effect(self, completion: EffectCompletion) -> None:
        effect, _claimed_by = self._effects[completion.effect_id]
        self._outcomes.setdefault(completion.effect_id, completion.outcome)
        if completion.skip_rest:
            for other, _ in self._effects.values():
                if other.plan_id == effect.plan_id and other.seq > effect.seq:
                    self._outcomes.setdefault(other.id, "skipped")

    def effect_outcome(self, effect_id: int) -> str | None:
        """How an effect ended (None: not yet)."""
        return self._outcomes.get(effect_id)

    async def pending(self, plan_id: str) -> list[PendingEffect]:
        """The plan's unfinished effects, in order."""
        found = [e for e, _ in self._effects.values() if e.plan_id == plan_id and e.id not in self._outcomes]
        return sorted(found, key=lambda e: e.seq)

    async def postpone(self, effect_id: int, error: str, delay_s: float) -> None:
        """Count a failed attempt (the memory store keeps no schedule: the worker sleeps)."""
        effect, claimed_by = self._effects[effect_id]
        self._effects[effect_id] = (replace(effect, attempts=effect.attempts + 1), claimed_by)
        self._errors[effect_id] = error

    async def unfinished(self, stream_ids: Sequence[str]) -> list[UnfinishedEffect]:
        """The effects of these streams with no outcome yet."""
        wanted = set(stream_ids)
        now = datetime.now(UTC)
        return [UnfinishedEffect(stream_id=e.stream_id, kind=e.kind, label=e.payload.get("label"),
                                 transfer_id=e.transfer_id, attempts=e.attempts, error=self._errors.get(e.id),
                                 due_at=now)
                for effect_id, (e, _) in sorted(self._effects.items())
                if e.stream_id in wanted and effect_id not in self._outcomes]

    async def stale(self, worker_id: str, older_than_s: float) -> list[PendingEffect]:
        """This worker's unfinished effects (the memory store keeps no times: all of them)."""
        return [e for effect_id, (e, claimed_by) in sorted(self._effects.items())
                if claimed_by == worker_id and effect_id not in self._outcomes]

    async def orphans(self, worker_id: str) -> list[PendingEffect]:
        """Unfinished effects claimed by a worker in `dead_workers`, now claimed by `worker_id`."""
        taken = []
        for effect_id, (effect, claimed_by) in sorted(self._effects.items()):
            if effect_id not in self._outcomes and claimed_by in self.dead_workers:
                self._effects[effect_id] = (effect, worker_id)
                taken.append(effect)
        return taken

    async def read_stream(
        self, stream_id: str, *, after_version: int = 0, limit: int | None = None
    ) -> list[StoredEvent]:
        selected = [e for e in self._streams.get(stream_id, []) if e.version > after_version]
        return selected if limit is None else selected[:limit]

    async def read_all(self, *, after_position: int = 0, limit: int = 1000) -> list[StoredEvent]:
        return [e for e in self._events if e.position > after_position][:limit]

    async def stream_ids(self) -> list[str]:
        return list(self._streams)

    async def get_document(self, stream_id: str) -> Mapping[str, Any] | None:
        row = self._rows.get(stream_id)
        return row.document if row else None

    async def list_documents(self, *, status: str | None, limit: int, cursor: str | None) -> Page:
        rows = sorted(self._rows.values(), key=lambda r: (r.created_at, r.stream_id), reverse=True)
        if status is not None:
            rows = [r for r in rows if r.status == status]
        if cursor is not None:
            after = decode_cursor(cursor)
            rows = [r for r in rows if (r.created_at, r.stream_id) < after]
        page = rows[:limit]
        more = len(rows) > limit
        next_cursor = encode_cursor(page[-1].created_at, page[-1].stream_id) if more and page else None
        return Page(items=[r.document for r in page], next_cursor=next_cursor)

    async def stream_for_call(self, call_sid: str) -> str | None:
        return next((r.stream_id for r in self._rows.values() if call_sid in r.call_sids), None)

    async def stream_for_twilio_sid(self, conference_sid: str) -> str | None:
        return next((r.stream_id for r in self._rows.values() if r.twilio_sid == conference_sid), None)

    async def stream_for_transfer(self, transfer_id: str) -> str | None:
        return next((r.stream_id for r in self._rows.values()
                     if any(t.get("id") == transfer_id for t in r.document.get("transfers", []))), None)

    async def live_conferences(self) -> list[str]:
        rows = sorted(self._rows.values(), key=lambda r: r.created_at)
        return [r.stream_id for r in rows if r.status != "completed"]

    async def moving_transfers(self) -> list[str]:
        rows = sorted(self._rows.values(), key=lambda r: r.created_at)
        return [r.stream_id for r in rows if r.status != "completed" and any(
            t.get("state") in ("dialing", "consulting") for t in r.document.get("transfers", []))]

    async def rebuild(self, project: Projector) -> int:
        async with self._lock:
            # Chunks of whole streams, as PostgreSQL's rebuild hands them: a projector that needs the whole log
            # in one call fails here too.
            stream_ids = list(self._streams)
            rows: list[ReadModelRow] = []
            for i in range(0, len(stream_ids), REBUILD_CHUNK_STREAMS):
                rows += project([e for s in stream_ids[i:i + REBUILD_CHUNK_STREAMS] for e in self._streams[s]])
            self._rows = {r.stream_id: r for r in rows}
            return len(rows)

    async def get_answer(self, scope: str, key: str) -> IdempotentAnswer | None:
        return self._answers.get((scope, key))

    async def reserve(self, scope: str, key: str, fingerprint: str, owner: str = "") -> IdempotentAnswer | None:
        existing = self._answers.get((scope, key))
        if existing is not None:
            return existing
        self._answers[(scope, key)] = IdempotentAnswer(fingerprint=fingerprint, status=0, body={}, owner=owner)
        return None

    async def take_over(self, scope: str, key: str, dead_owner: str, owner: str) -> bool:
        existing = self._answers.get((scope, key))
        if existing is None or existing.status != 0 or existing.owner != dead_owner \
                or dead_owner not in self.dead_workers:
            return False
        self._answers[(scope, key)] = replace(existing, owner=owner)
        return True

    async def complete(self, scope: str, key: str, answer: IdempotentAnswer) -> None:
        self._answers[(scope, key)] = answer

    async def release(self, scope: str, key: str) -> None:
        existing = self._answers.get((scope, key))
        if existing is not None and existing.status == 0:
            del self._answers[(scope, key)]
