"""Loading a conference from its stream and appending what a decision produced, safely under concurrency.

Every writer (webhook or command, in any process) goes through `ConferenceRepository.change`: decide on the
state this process last folded (trusted: the append's version check catches a stale one), append at that
version, and on a conflict read what is new and decide again. So the common case is one round trip: the
append. Writers of one conference inside one process take turns (a lock per conference), so they never
conflict with each other; across processes the version check serializes them.

The effects a plan asks of Twilio are stored with its events, in the outbox, claimed by this process, and
handed to `run_effects` (the outbox worker) once stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import structlog

from confctl.domain.codec import decode, encode
from confctl.domain.effects import Plan, encode_effect
from confctl.domain.errors import DomainError
from confctl.domain.evolve import evolve
from confctl.domain.model import Conference
from confctl.domain.reactions import planned
from confctl.service.ports import ConcurrencyError, EffectCompletion, EventStore, NewEffect, NewEvent, StoredEvent
from confctl.service.projection import read_model_row

log = structlog.get_logger(__name__)

Decision = Callable[[Conference], Plan]
MAX_ATTEMPTS = 20


@dataclass(frozen=True, slots=True)
class Change:
    """The outcome of `change`: the state after it, the stored events, whether it was a repeat.

    `effect_ids` are the outbox rows of `plan.effects` (same order), all of plan `plan_id`; `effects_done` is
    the task running them (None when there are none, or nothing runs effects in this process).
    """

    state: Conference
    events: Sequence[StoredEvent]
    plan: Plan
    duplicate: bool = False
    plan_id: str = ""
    effect_ids: Sequence[int] = field(default_factory=tuple)
    effects_done: asyncio.Task[None] | None = None


EffectRunner = Callable[[str, Change, Mapping[str, Any]], "asyncio.Task[None] | None"]


class ConferenceRepository:
    """Conferences as folds of their event streams.

    The last state folded per conference is kept (states are immutable), so a load reads and folds only the
    events stored since, by this process or any other: the log stays the truth, the cache only saves work.
    `worker_id` names this process in the outbox: effects it decides are claimed by it.
    """

    def __init__(self, store: EventStore, cache_size: int = 2000, worker_id: str = "") -> None:
        self.store = store
        self.worker_id = worker_id or f"worker-{uuid.uuid4().hex}"
        self._cache: OrderedDict[str, Conference] = OrderedDict()
        self._cache_size = cache_size
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}  # lock and how many writers hold or wait for it
        # Set by the outbox worker: every stored plan's effects start running as soon as they are stored,
        # whoever stored them (a webhook, a command, an outcome, a sync): none can be forgotten.
        self.run_effects: EffectRunner | None = None
        # Set by the lost-callback watch (service/suspicions.py): shown every state stored, in memory only.
        self.on_stored: Callable[[Conference], None] | None = None

    async def load(self, conference_id: str, *, remember: bool = True) -> Conference:
        """The current state (an empty Conference with version 0 when nothing is stored). `remember=False`: a
        sweep over every conference (reconciliation) does not push the busy ones out of the cache."""
        known = self._cache.get(conference_id) or Conference(id=conference_id)
        newer = await self.store.read_stream(conference_id, after_version=known.version)
        state = known
        for stored in newer:
            state = evolve(state, decode(stored.type, stored.data))
        if remember or conference_id in self._cache:
            self._remember(state)
        return state

    def _remember(self, state: Conference) -> None:
        if not state.exists:
            return
        current = self._cache.get(state.id)
        if current is None or current.version <= state.version:
            self._cache[state.id] = state
        self._cache.move_to_end(state.id)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    @contextlib.asynccontextmanager
    async def _turn(self, conference_id: str) -> AsyncIterator[None]:
        """This process's writers of one conference, one at a time (the entry goes with the last of them)."""
        lock, users = self._locks.get(conference_id) or (asyncio.Lock(), 0)
        self._locks[conference_id] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[conference_id]
            if users == 1:
                del self._locks[conference_id]
            else:
                self._locks[conference_id] = (lock, users - 1)

    async def change(
        self,
        conference_id: str,
        decide: Decision,
        *,
        metadata: Mapping[str, Any],
        dedupe_key: str | None = None,
        completes: Sequence[EffectCompletion] = (),
    ) -> Change:
        """Decide on the current state and append the plan's events, their reactions' and its effects in one go.

        On a concurrent writer the whole decision is taken again on the new state. Domain errors raised by
        `decide` propagate with nothing stored (after checking them against the stored state, never only
        against the cache).
        """
        async with self._turn(conference_id):
            return await self._change(conference_id, decide, metadata, dedupe_key, completes)

    async def _change(self, conference_id: str, decide: Decision, metadata: Mapping[str, Any],
                      dedupe_key: str | None, completes: Sequence[EffectCompletion]) -> Change:
        cached = self._cache.get(conference_id)
        fresh = cached is None
        state = cached if cached is not None else await self.load(conference_id)
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                plan, after = planned(state, decide(state))
            except DomainError:
                if fresh:
                    raise
                state, fresh = await self.load(conference_id), True  # refused on the cache: ask the log
                continue
            plan_id = f"PL{uuid.uuid4().hex}" if plan.effects else ""
            try:
                result = await self.store.append(
                    conference_id,
                    [NewEvent(*encode(e), metadata=dict(metadata)) for e in plan.events],
                    expected_version=state.version,
                    dedupe_key=dedupe_key,
                    read_model=read_model_row(after, known=state) if plan.events else None,
                    effects=[NewEffect(plan_id=plan_id, seq=i, kind=kind, payload=payload, metadata=dict(metadata),
                                       transfer_id=plan.transfer_id, claimed_by=self.worker_id)
                             for i, (kind, payload) in enumerate(map(encode_effect, plan.effects))],
                    completes=completes,
                )
            except ConcurrencyError:
                log.debug("conference.append.conflict", conference_id=conference_id, attempt=attempt)
                state, fresh = await self.load(conference_id), True
                continue
            if result.duplicate:
                return Change(state=state, events=[], plan=Plan(), duplicate=True)
            self._remember(after)
            if self.on_stored is not None:
                self.on_stored(after)
            change = Change(state=after, events=result.events, plan=plan, plan_id=plan_id,
                            effect_ids=tuple(result.effect_ids))
            if plan.effects and self.run_effects is not None:
                change = replace(change, effects_done=self.run_effects(conference_id, change, metadata))
            return change
        raise ConcurrencyError(conference_id, -1, -1)
