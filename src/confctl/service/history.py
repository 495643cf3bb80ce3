"""A conference as it was: the fold of its stream up to a version or a time, and the placed steps of the timeline.

Read straight from the log (never the repository's cache, which holds only the newest state), with the same
`evolve` as every writer, so a past answer is what the live one was at that version.
"""

from __future__ import annotations

from datetime import datetime

from confctl.domain.codec import decode
from confctl.domain.evolve import evolve
from confctl.domain.model import Conference
from confctl.domain.timeline import Step
from confctl.service.ports import EventStore


async def state_at(store: EventStore, conference_id: str, *, version: int | None = None,
                   until: datetime | None = None) -> Conference:
    """The state after the events with version <= `version`, or after the events stored at or before `until`.

    `until` takes the log's prefix up to the last event stored by then (the log's order is the versions', and a
    fold is only meaningful over a prefix). A state with version 0: nothing was stored by then.
    """
    stored = await store.read_stream(conference_id, limit=version)
    state = Conference(id=conference_id)
    for event in stored:
        if until is not None and event.recorded_at > until:
            break
        state = evolve(state, decode(event.type, event.data))
    return state


async def steps(store: EventStore, conference_id: str) -> list[Step]:
    """Every event of the conference, oldest first, as the state after it, when it was stored and by whom."""
    state = Conference(id=conference_id)
    result: list[Step] = []
    for event in await store.read_stream(conference_id):
        state = evolve(state, decode(event.type, event.data))
        actor = event.metadata.get("actor")
        result.append(Step(state=state, version=event.version, at=event.recorded_at.isoformat(),
                           actor=actor if isinstance(actor, str) else None))
    return result
