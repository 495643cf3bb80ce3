"""The event-store contract, run against the in-memory store and against real PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from confctl.adapters.memory_store import MemoryEventStore
from confctl.adapters.pg_store import PostgresEventStore
from confctl.service.ports import ConcurrencyError, IdempotentAnswer, NewEvent, ReadModelRow, StoredEvent

Store = MemoryEventStore | PostgresEventStore


@pytest.fixture(params=["memory", "postgres"])
async def store(request: pytest.FixtureRequest, engine: AsyncEngine) -> Store:
    """Each contract test runs once per implementation."""
    return MemoryEventStore() if request.param == "memory" else PostgresEventStore(engine)


def new(kind: str, n: int = 0) -> NewEvent:
    return NewEvent(type=kind, data={"n": n, "text": "<&é>"}, metadata={"actor": "test"})


def row(
    stream_id: str, version: int, created: int = 0, status: str = "init", sids: tuple[str, ...] = ()
) -> ReadModelRow:
    return ReadModelRow(
        stream_id=stream_id,
        status=status,
        created_at=datetime(2026, 1, 1, 0, 0, created, tzinfo=UTC),
        version=version,
        document={"id": stream_id, "version": version},
        twilio_sid=f"CF{stream_id}",
        call_sids=sids,
    )


async def test_append_then_read_stream_in_order(store: Store) -> None:
    """Appended events come back in version order with their data, metadata and consecutive versions."""
    first = await store.append("s1", [new("a.one", 1), new("a.two", 2)], expected_version=0)
    second = await store.append("s1", [new("a.three", 3)], expected_version=2)
    assert (first.version, second.version) == (2, 3)
    events = await store.read_stream("s1")
    assert [(e.version, e.type, e.data["n"]) for e in events] == [(1, "a.one", 1), (2, "a.two", 2), (3, "a.three", 3)]
    assert events[0].data["text"] == "<&é>"
    assert events[0].metadata == {"actor": "test"}
    assert [e.version for e in await store.read_stream("s1", after_version=1, limit=1)] == [2]


async def test_wrong_expected_version_is_a_concurrency_error_and_stores_nothing(store: Store) -> None:
    """Appending at a stale version raises ConcurrencyError and leaves the stream unchanged."""
    await store.append("s1", [new("a")], expected_version=0)
    with pytest.raises(ConcurrencyError) as caught:
        await store.append("s1", [new("b")], expected_version=0)
    assert (caught.value.expected, caught.value.actual) == (0, 1)
    assert len(await store.read_stream("s1")) == 1


async def test_expected_version_none_appends_at_any_version(store: Store) -> None:
    """expected_version=None skips the check."""
    await store.append("s1", [new("a")], expected_version=0)
    result = await store.append("s1", [new("b")], expected_version=None)
    assert result.version == 2


async def test_two_concurrent_appends_one_wins_the_other_conflicts(store: Store) -> None:
    """Two writers at the same version: exactly one succeeds, the other gets ConcurrencyError; nothing is lost."""
    await store.append("s1", [new("seed")], expected_version=0)

    async def attempt(tag: str) -> str:
        try:
            await store.append("s1", [new(f"w.{tag}")], expected_version=1)
        except ConcurrencyError:
            return "conflict"
        return "ok"

    outcomes = await asyncio.gather(*(attempt(str(i)) for i in range(2)))
    assert sorted(outcomes) == ["conflict", "ok"]
    events = await store.read_stream("s1")
    assert [e.version for e in events] == [1, 2]
    # The loser retries on the new version and lands too: nothing lost.
    await store.append("s1", [new("w.retry")], expected_version=2)
    assert len(await store.read_stream("s1")) == 3


async def test_repeated_dedupe_key_is_a_noop(store: Store) -> None:
    """A second append with the same dedupe key stores nothing and says it was a duplicate."""
    first = await store.append("s1", [new("cb")], expected_version=0, dedupe_key="conf:CF1:1")
    again = await store.append("s1", [new("cb")], expected_version=1, dedupe_key="conf:CF1:1")
    assert not first.duplicate
    assert again.duplicate and again.events == [] and again.version == 1
    assert len(await store.read_stream("s1")) == 1


async def test_concurrent_repeats_of_one_dedupe_key_store_once(store: Store) -> None:
    """The same callback delivered twice at once is stored once."""
    results = await asyncio.gather(
        *(store.append("s1", [new("cb")], expected_version=None, dedupe_key="k") for _ in range(5))
    )
    assert sum(not r.duplicate for r in results) == 1
    assert len(await store.read_stream("s1")) == 1


async def test_failed_append_does_not_keep_its_dedupe_key(store: Store) -> None:
    """A conflicting append rolls back its dedupe key, so the retry is not mistaken for a repeat."""
    await store.append("s1", [new("a")], expected_version=0)
    with pytest.raises(ConcurrencyError):
        await store.append("s1", [new("b")], expected_version=0, dedupe_key="k")
    retry = await store.append("s1", [new("b")], expected_version=1, dedupe_key="k")
    assert not retry.duplicate and retry.version == 2


async def test_read_all_is_global_order_across_streams(store: Store) -> None:
    """read_all returns every stream's events by global position, from a position on."""
    await store.append("s1", [new("a")], expected_version=0)
    await store.append("s2", [new("b")], expected_version=0)
    await store.append("s1", [new("c")], expected_version=1)
    everything = await store.read_all()
    assert [(e.stream_id, e.type) for e in everything] == [("s1", "a"), ("s2", "b"), ("s1", "c")]
    positions = [e.position for e in everything]
    assert positions == sorted(positions) and len(set(positions)) == 3
    assert [e.type for e in await store.read_all(after_position=positions[0])] == ["b", "c"]
    assert [e.type for e in await store.read_all(limit=1)] == ["a"]
    assert await store.stream_ids() == ["s1", "s2"]


async def test_concurrent_appends_to_many_streams_keep_a_gapless_global_order(store: Store) -> None:
    """Many concurrent writers: positions of committed events are strictly increasing, and none is missing."""
    await asyncio.gather(*(store.append(f"s{i}", [new("x"), new("y")], expected_version=0) for i in range(10)))
    everything = await store.read_all()
    assert len(everything) == 20
    positions = [e.position for e in everything]
    assert positions == sorted(set(positions))


async def test_read_model_written_with_the_append(store: Store) -> None:
    """The read-model row given to append is stored atomically with the events, and is queryable."""
    await store.append("room-1", [new("a")], expected_version=0, read_model=row("room-1", 1, sids=("CA1",)))
    assert await store.get_document("room-1") == {"id": "room-1", "version": 1}
    assert await store.stream_for_call("CA1") == "room-1"
    assert await store.stream_for_twilio_sid("CFroom-1") == "room-1"
    assert await store.get_document("nope") is None
    with pytest.raises(ConcurrencyError):
        await store.append("room-1", [new("b")], expected_version=0, read_model=row("room-1", 99))
    assert await store.get_document("room-1") == {"id": "room-1", "version": 1}


async def test_list_documents_pages_newest_first_by_status(store: Store) -> None:
    """Documents list newest first, filter by status and page with a cursor that never repeats an item."""
    for i in range(5):
        status = "completed" if i % 2 else "in-progress"
        await store.append(f"r{i}", [new("a")], expected_version=0, read_model=row(f"r{i}", 1, i, status))
    first = await store.list_documents(status=None, limit=2, cursor=None)
    assert [d["id"] for d in first.items] == ["r4", "r3"]
    second = await store.list_documents(status=None, limit=2, cursor=first.next_cursor)
    third = await store.list_documents(status=None, limit=2, cursor=second.next_cursor)
    assert [d["id"] for d in second.items] == ["r2", "r1"]
    assert [d["id"] for d in third.items] == ["r0"] and third.next_cursor is None
    done = await store.list_documents(status="completed", limit=10, cursor=None)
    assert [d["id"] for d in done.items] == ["r3", "r1"]
    with pytest.raises(ValueError, match="cursor"):
        await store.list_documents(status=None, limit=2, cursor="garbage!")


async def test_rebuild_replaces_the_read_model_from_the_log(store: Store) -> None:
    """rebuild hands every event to the projector and swaps the read model for its rows."""
    await store.append("a", [new("x")], expected_version=0, read_model=row("a", 1))
    await store.append("b", [new("x"), new("y")], expected_version=0, read_model=row("b", 2))

    def project(events: list[StoredEvent]) -> list[ReadModelRow]:
        counts: dict[str, int] = {}
        for e in events:
            counts[e.stream_id] = counts.get(e.stream_id, 0) + 1
        when = datetime(2026, 1, 1, tzinfo=UTC)
        return [ReadModelRow(s, "init", when, n, {"id": s, "n": n}) for s, n in counts.items()]

    assert await store.rebuild(project) == 2
    assert await store.get_document("b") == {"id": "b", "n": 2}


async def test_idempotency_key_reserved_once_then_answered(store: Store) -> None:
    """The first reserve takes the key; later ones see it in flight, then the answer; keys are per scope."""
    assert await store.reserve("key-a", "k1", "f1") is None
    in_flight = await store.reserve("key-a", "k1", "f1")
    assert in_flight is not None and in_flight.status == 0 and in_flight.fingerprint == "f1"
    assert await store.reserve("key-b", "k1", "f1") is None
    answer = IdempotentAnswer(fingerprint="f1", status=202, body={"a": 1})
    await store.complete("key-a", "k1", answer)
    assert await store.reserve("key-a", "k1", "f2") == answer
    assert await store.get_answer("key-a", "k1") == answer


async def test_a_released_reservation_can_be_taken_again(store: Store) -> None:
    """A request that failed frees its key; an answered key is never released."""
    assert await store.reserve("s", "k", "f") is None
    await store.release("s", "k")
    assert await store.get_answer("s", "k") is None
    assert await store.reserve("s", "k", "f") is None
    await store.complete("s", "k", IdempotentAnswer(fingerprint="f", status=202, body={}))
    await store.release("s", "k")
    assert (await store.get_answer("s", "k")) is not None
