"""Loading a conference from its stream and appending what a decision produced, safely under concurrency.

Every writer (webhook or command, in any process) goes through `ConferenceRepository.change`: read the
stream, fold, decide, append at the version read, and on a concurrency conflict do it all again.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from confctl.domain.codec import decode, encode
from confctl.domain.effects import Plan
from confctl.domain.evolve import evolve
from confctl.domain.model import Conference
from confctl.domain.reactions import with_reactions
from confctl.service.ports import ConcurrencyError, EventStore, NewEvent, StoredEvent
from confctl.service.projection import read_model_row

log = structlog.get_logger(__name__)

Decision = Callable[[Conference], Plan]
MAX_ATTEMPTS = 20


@dataclass(frozen=True, slots=True)
class Change:
    """The outcome of `change`: the state after it, the stored events, whether it was a repeat."""

    state: Conference
    events: Sequence[StoredEvent]
    plan: Plan
    duplicate: bool = False


class ConferenceRepository:
    """Conferences as folds of their event streams.

    The last state folded per conference is kept (states are immutable), so a load reads and folds only the
    events stored since, by this process or any other: the log stays the truth, the cache only saves work.
    """

    def __init__(self, store: EventStore, cache_size: int = 2000) -> None:
        self.store = store
        self._cache: OrderedDict[str, Conference] = OrderedDict()
        self._cache_size = cache_size

    async def load(self, conference_id: str) -> Conference:
        """The current state (an empty Conference with version 0 when nothing is stored)."""
        known = self._cache.get(conference_id) or Conference(id=conference_id)
        newer = await self.store.read_stream(conference_id, after_version=known.version)
        state = known
        for stored in newer:
            state = evolve(state, decode(stored.type, stored.data))
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

    async def change(
        self,
        conference_id: str,
        decide: Decision,
        *,
        metadata: Mapping[str, Any],
        dedupe_key: str | None = None,
    ) -> Change:
        """Decide on the current state and append the plan's events and their reactions' in one go.

        On a concurrent writer the whole decision is taken again on the new state. Domain errors raised by
        `decide` propagate with nothing stored.
        """
        for attempt in range(1, MAX_ATTEMPTS + 1):
            state = await self.load(conference_id)
            plan = with_reactions(state, decide(state))
            decided = plan.events
            after = state
            for event in decided:
                after = evolve(after, event)
            new_events = [NewEvent(*encode(e), metadata=dict(metadata)) for e in decided]
            try:
                result = await self.store.append(
                    conference_id,
                    new_events,
                    expected_version=state.version,
                    dedupe_key=dedupe_key,
                    read_model=read_model_row(after) if decided else None,
                )
            except ConcurrencyError:
                log.debug("conference.append.conflict", conference_id=conference_id, attempt=attempt)
                continue
            if result.duplicate:
                return Change(state=state, events=[], plan=Plan(), duplicate=True)
            self._remember(after)
            return Change(state=after, events=result.events, plan=plan)
        raise ConcurrencyError(conference_id, -1, -1)
