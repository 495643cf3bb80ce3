"""The conference repository: decisions retried on concurrent writers, and a per-process cache that never
hides what another process stored."""

from __future__ import annotations

from confctl.adapters.memory_store import MemoryEventStore
from confctl.domain import events as ev
from confctl.domain.codec import encode
from confctl.domain.effects import Plan
from confctl.domain.model import Conference
from confctl.service.conferences import ConferenceRepository
from confctl.service.ports import NewEvent

AT = "2026-11-25T12:00:00+00:00"


def joined(seq: int, sid: str, label: str) -> ev.ParticipantJoined:
    return ev.ParticipantJoined(conference_sid="CF1", call_sid=sid, label=label, sequence=seq, at=AT,
                                flags=ev.ParticipantFlags())


async def test_a_cached_state_still_sees_events_stored_by_another_process() -> None:
    """Process A folded the stream; process B appends; A's next load includes B's event."""
    store = MemoryEventStore()
    a, b = ConferenceRepository(store), ConferenceRepository(store)
    await a.change("room", lambda _s: Plan(events=[joined(1, "CA1", "customer")]), metadata={})
    assert (await a.load("room")).version == 1
    await b.change("room", lambda _s: Plan(events=[joined(2, "CA2", "agent-x")]), metadata={})
    state = await a.load("room")
    assert state.version == 2
    assert {p.label for p in state.participants} == {"customer", "agent-x"}


class RacedStore(MemoryEventStore):
    """The real in-memory store, with another writer landing just before our first append."""

    def __init__(self) -> None:
        super().__init__()
        self.raced = False

    async def append(self, stream_id, events, *, expected_version, **options):  # type: ignore[no-untyped-def]
        if not self.raced and expected_version:
            self.raced = True
            await super().append(stream_id, [NewEvent(*encode(joined(2, "CAx", "agent")))], expected_version=None)
        return await super().append(stream_id, events, expected_version=expected_version, **options)


async def test_a_decision_is_retaken_on_the_state_a_concurrent_writer_left() -> None:
    """When another writer gets in between the read and the append, `decide` runs again on the new state."""
    store = RacedStore()
    repo = ConferenceRepository(store)
    await repo.change("room", lambda _s: Plan(events=[joined(1, "CA0", "customer")]), metadata={})
    seen: list[int] = []

    def decide(state: Conference) -> Plan:
        seen.append(state.version)
        return Plan(events=[joined(10 + state.version, f"CA{state.version}", f"leg-{state.version}")])

    change = await repo.change("room", decide, metadata={})
    assert seen == [1, 2]
    assert change.state.version == 3
    assert {p.label for p in change.state.participants} == {"customer", "agent", "leg-2"}
