"""Rebuilding the read model on PostgreSQL: same answers as the appends wrote, appends and followers unhindered
while it runs, memory bounded by a chunk rather than by the log."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import time
import tracemalloc
import typing
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from confctl.adapters.pg_rebuild import INDEXES_SQL, RELOPTIONS_SQL, Rebuild, RebuildSettings, rebuild_read_model
from confctl.adapters.pg_store import PostgresEventStore
from confctl.domain import events as ev
from confctl.domain.codec import decode, encode
from confctl.domain.events import EVENT_TYPES
from confctl.domain.evolve import evolve
from confctl.domain.model import Conference
from confctl.service.ports import NewEvent, ReadModelRow, StoredEvent
from confctl.service.projection import project_all, read_model_row

_rooms = itertools.count(1)


def call_events(n: int) -> list[ev.DomainEvent]:
    """Ten facts of one ordinary call: created, two joins, start, hold, unhold, mute, two leaves, end."""
    customer, agent, sid = f"CA{n:032d}", f"CA{n + 10**9:032d}", f"CF{n:032d}"
    minute = n % 60

    def at(second: int) -> str:
        return f"2026-11-25T12:{minute:02d}:{second:02d}+00:00"

    flags, cust = ev.ParticipantFlags, {"conference_sid": sid, "call_sid": customer, "label": "customer"}
    alice = {"conference_sid": sid, "call_sid": agent, "label": "agent-alice"}
    return [
        ev.ConferenceCreated(customer_call_sid=customer, caller="+15551230001", called="+15559990000",
                             record=False, at=at(n % 7)),
        ev.ParticipantJoined(**cust, sequence=1, at=at(10), flags=flags(end_conference_on_exit=True)),
        ev.ParticipantJoined(**alice, sequence=2, at=at(11), flags=flags()),
        ev.ConferenceStarted(conference_sid=sid, sequence=3, at=at(12)),
        ev.ParticipantHeld(**cust, sequence=4, at=at(13), flags=flags(hold=True, end_conference_on_exit=True)),
        ev.ParticipantUnheld(**cust, sequence=5, at=at(14), flags=flags(end_conference_on_exit=True)),
        ev.ParticipantMuted(**alice, sequence=6, at=at(15), flags=flags(muted=True)),
        ev.ParticipantLeft(**cust, sequence=7, at=at(16), flags=flags(end_conference_on_exit=True),
                           reason="participant_hung_up", call_status="completed"),
        ev.ParticipantLeft(**alice, sequence=8, at=at(17), flags=flags(muted=True),
                           reason="conference_ended_via_api", call_status="completed"),
        ev.ConferenceEnded(conference_sid=sid, sequence=9, at=at(18),
                           reason="participant-with-end-conference-on-exit-left", ended_by_call_sid=customer,
                           ended_by_label="customer"),
    ]


async def append_call(store: PostgresEventStore, room: str, facts: list[ev.DomainEvent], per_append: int) -> None:
    """Append a call's facts the way the service does: at the expected version, with the folded read-model row."""
    state = Conference(id=room)
    for i in range(0, len(facts), per_append):
        after = state
        batch = facts[i:i + per_append]
        for fact in batch:
            after = evolve(after, fact)
        await store.append(room, [NewEvent(*encode(f), metadata={"actor": "test"}) for f in batch],
                           expected_version=state.version, read_model=read_model_row(after))
        state = after


async def fill(store: PostgresEventStore, conferences: int, *, per_append: int = 5, concurrency: int = 64,
               facts: int = 10) -> list[str]:
    """`conferences` calls of `facts` facts each through the real append path, many at once; their stream ids."""
    rooms = [f"room-{next(_rooms):07d}" for _ in range(conferences)]
    gate = asyncio.Semaphore(concurrency)

    async def one(room: str) -> None:
        async with gate:
            await append_call(store, room, call_events(int(room.rsplit("-", 1)[1]))[:facts], per_append)

    await asyncio.gather(*(one(r) for r in rooms))
    return rooms


async def read_model(store: PostgresEventStore) -> dict[str, Any]:
    """Everything the read model answers: every document, the call index, list order (all and by status)."""
    pool = await store.pool.get()
    documents = {r["id"]: (r["status"], r["created_at"], r["version"], r["twilio_sid"], r["document"])
                 for r in await pool.fetch("SELECT * FROM conferences")}
    legs = {r["call_sid"]: r["conference_id"] for r in await pool.fetch("SELECT * FROM call_legs")}

    async def listing(status: str | None) -> list[str]:
        ids: list[str] = []
        cursor = None
        while True:
            page = await store.list_documents(status=status, limit=500, cursor=cursor)
            ids += [d["id"] for d in page.items]
            if (cursor := page.next_cursor) is None:
                return ids

    return {"documents": documents, "legs": legs, "all": await listing(None),
            "completed": await listing("completed"), "in-progress": await listing("in-progress")}


async def schema(store: PostgresEventStore) -> dict[str, Any]:
    """The read model's indexes (names and definitions), constraints and storage parameters, per table."""
    pool = await store.pool.get()
    found: dict[str, Any] = {}
    for table in ("conferences", "call_legs"):
        found[table] = (
            sorted((r["name"], r["definition"]) for r in await pool.fetch(INDEXES_SQL, table)),
            sorted((r["conname"], r["contype"]) for r in await pool.fetch(
                "SELECT conname, contype::text FROM pg_constraint WHERE conrelid = $1::regclass", table)),
            await pool.fetchval(RELOPTIONS_SQL, table),
        )
    return found


async def projection_of_the_log(store: PostgresEventStore) -> dict[str, ReadModelRow]:
    """What the read model must be: the fold of every stream in the log."""
    events, after = [], 0
    while batch := await store.read_all(after_position=after, limit=5000):
        events += batch
        after = batch[-1].position
    return {r.stream_id: r for r in project_all(events)}


async def assert_read_model_is(store: PostgresEventStore, expected: dict[str, ReadModelRow]) -> None:
    pool = await store.pool.get()
    rows = {r["id"]: (r["status"], r["created_at"], r["version"], r["twilio_sid"], r["document"])
            for r in await pool.fetch("SELECT * FROM conferences")}
    assert rows == {s: (r.status, r.created_at, r.version, r.twilio_sid, r.document) for s, r in expected.items()}
    legs = {r["call_sid"]: r["conference_id"] for r in await pool.fetch("SELECT * FROM call_legs")}
    assert legs == {sid: s for s, r in expected.items() for sid in r.call_sids}


@pytest.fixture
async def store(engine: AsyncEngine) -> AsyncIterator[PostgresEventStore]:
    """A PostgreSQL store on the emptied test database, closed after the test."""
    store = PostgresEventStore(engine)
    yield store
    await store.aclose()


async def test_rebuild_gives_the_answers_the_appends_wrote(store: PostgresEventStore) -> None:
    """Many conferences at various points of their call: the rebuilt read model is the one the appends wrote,
    in a thread or in worker processes, and a second rebuild finds the same schema (index names included)."""
    await fill(store, 300, per_append=3)
    await fill(store, 40, per_append=2, facts=5)  # calls still going: other documents, other listings
    await fill(store, 20, per_append=1, facts=2)
    before, names = await read_model(store), await schema(store)
    assert len(before["documents"]) == 360 and len(before["legs"]) == 700
    assert await store.rebuild(project_all) == 360
    assert await read_model(store) == before
    assert await schema(store) == names
    small = RebuildSettings(workers=2, chunk_streams=50)
    assert await rebuild_read_model(store.pool, project_all, small) == 360
    assert await read_model(store) == before
    assert await schema(store) == names
    # The app's prepared statements and the append function find the new tables.
    room = next(iter(before["documents"]))
    assert (await store.get_document(room) or {})["id"] == room
    await fill(store, 1)
    assert len((await read_model(store))["documents"]) == 361


async def run_appends_until(done: asyncio.Event, store: PostgresEventStore, unfinished: list[str],
                            latencies: list[float]) -> None:
    """Finish the calls in `unfinished` and start new ones, timing each append, until `done` (and a bit more)."""
    async def timed(room: str, facts: list[ev.DomainEvent], version: int) -> None:
        started = time.perf_counter()
        state = Conference(id=room)
        for fact in (await store.read_stream(room)):
            state = evolve(state, decode(fact.type, fact.data))
        after = state
        for fact in facts:
            after = evolve(after, fact)
        await store.append(room, [NewEvent(*encode(f)) for f in facts], expected_version=version,
                           read_model=read_model_row(after))
        latencies.append(time.perf_counter() - started)

    waiting = list(unfinished)
    while not done.is_set() or len(latencies) < 10:
        jobs = []
        for room in waiting[:8]:
            jobs.append(timed(room, call_events(int(room.rsplit("-", 1)[1]))[5:], 5))
        waiting = waiting[8:]
        for _ in range(4):
            room = f"room-{next(_rooms):07d}"
            jobs.append(timed(room, call_events(int(room.rsplit("-", 1)[1])), 0))
        await asyncio.gather(*jobs)
        await asyncio.sleep(0.01)


async def test_appends_go_on_while_a_rebuild_runs(store: PostgresEventStore) -> None:
    """Appends succeed while a rebuild runs, none waits for the whole of it, and the streams they wrote
    (new ones, and ones the rebuild had already read) are in the rebuilt read model."""
    unfinished = await fill(store, 300, per_append=5, facts=5)  # first in stream order: read early
    await fill(store, 1200, per_append=10)
    done, latencies = asyncio.Event(), []
    appender = asyncio.create_task(run_appends_until(done, store, unfinished, latencies))
    await asyncio.sleep(0.05)
    rebuild = Rebuild(store.pool, project_all, RebuildSettings(chunk_streams=100, workers=0))
    started = time.perf_counter()
    try:
        await rebuild.run()
        elapsed = time.perf_counter() - started
        during = len(latencies)
    finally:
        done.set()
        await appender
    assert during >= 20, "appends were held up by the rebuild"
    assert max(latencies) < elapsed / 2, (max(latencies), elapsed)
    assert rebuild.refolded + rebuild.refolded_locked > 0
    await assert_read_model_is(store, await projection_of_the_log(store))


async def test_a_follower_misses_and_repeats_nothing_while_a_rebuild_runs(store: PostgresEventStore) -> None:
    """A follower of the global feed, reading after its last position in a loop, sees every event exactly once
    while a rebuild runs beside concurrent appends."""
    await fill(store, 600, per_append=5)
    seen: list[int] = []
    done, latencies = asyncio.Event(), []

    async def follow(until: asyncio.Event) -> None:
        while True:
            batch = await store.read_all(after_position=seen[-1] if seen else 0, limit=300)
            seen.extend(e.position for e in batch)
            if not batch:
                if until.is_set():
                    return
                await asyncio.sleep(0.002)

    stop_following = asyncio.Event()
    follower = asyncio.create_task(follow(stop_following))
    appender = asyncio.create_task(run_appends_until(done, store, [], latencies))
    try:
        await rebuild_read_model(store.pool, project_all, RebuildSettings(chunk_streams=100, workers=0))
    finally:
        done.set()
        await appender
        stop_following.set()
        await follower
    pool = await store.pool.get()
    stored = [r[0] for r in await pool.fetch("SELECT position FROM events ORDER BY position")]
    assert len(stored) > 6000
    assert seen == stored


async def test_rebuild_memory_does_not_grow_with_the_log(store: PostgresEventStore) -> None:
    """The rebuild's peak Python memory is that of a chunk: the same for a log ten times longer (1,000 and
    10,000 events)."""
    chunked = RebuildSettings(chunk_streams=10, workers=0)

    async def peak() -> int:
        tracemalloc.start()
        try:
            await rebuild_read_model(store.pool, project_all, chunked)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    await fill(store, 100, per_append=10)
    small = await peak()
    await fill(store, 900, per_append=10)
    large = await peak()
    assert large < small * 1.5, (small, large)


async def test_a_failed_rebuild_leaves_the_read_model_as_it_was(store: PostgresEventStore) -> None:
    """A projector that fails halfway: the rebuild raises, the live read model is untouched, nothing is left."""
    await fill(store, 120, per_append=5)
    before = await read_model(store)
    calls = 0

    def failing(events: Sequence[StoredEvent]) -> list[ReadModelRow]:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise RuntimeError("projector bug")
        return project_all(events)

    with pytest.raises(RuntimeError, match="projector bug"):
        await rebuild_read_model(store.pool, failing, RebuildSettings(chunk_streams=20))
    assert await read_model(store) == before
    pool = await store.pool.get()
    assert await pool.fetchval("SELECT count(*) FROM pg_class WHERE relname LIKE '%_rebuild%'") == 0


def _json(depth: int = 2) -> st.SearchStrategy[Any]:
    leaf = st.none() | st.booleans() | st.integers(-10, 10**6) | st.text(max_size=8)
    return leaf if depth == 0 else leaf | st.lists(_json(depth - 1), max_size=3) | st.dictionaries(
        st.text(max_size=6), _json(depth - 1), max_size=3)


def _data_for(cls: type[Any], depth: int = 2) -> st.SearchStrategy[dict[str, Any]]:
    """Any JSON object with some or all of the fields of `cls` (nested dataclasses as objects of theirs)."""
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for f in dataclasses.fields(cls):
        nested = [c for c in vars(ev).values() if isinstance(c, type) and dataclasses.is_dataclass(c)
                  and c.__name__ in str(f.type) and not issubclass(c, ev.DomainEvent)]
        fields[f.name] = _json() | (_data_for(nested[0], depth - 1) if nested and depth else _json())
    return st.fixed_dictionaries({}, optional=fields)


_CASES = st.one_of([st.tuples(st.just(t), _data_for(cls)) for t, cls in sorted(EVENT_TYPES.items())])


def _reference_decode(cls: type[Any], data: dict[str, Any]) -> Any:
    """The codec's rule, spelled out plainly: known fields only, nested dataclasses built from objects, tuple
    fields from lists (JSON has no tuples)."""
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            value = data[f.name]
            hint = hints[f.name]
            nested = next((c for c in typing.get_args(hint) or (hint,)
                           if isinstance(c, type) and dataclasses.is_dataclass(c)), None)
            holds_tuple = any(typing.get_origin(c) is tuple for c in (hint, *typing.get_args(hint)))
            if nested and isinstance(value, dict):
                value = _reference_decode(nested, value)
            elif holds_tuple and isinstance(value, list):
                value = tuple(value)
            kwargs[f.name] = value
    return cls(**kwargs)


@settings(max_examples=200, deadline=None)
@given(_CASES)
def test_the_codec_decodes_any_stored_data_by_its_rule(case: tuple[str, dict[str, Any]]) -> None:
    """`codec.decode` (with its fields worked out once per class, for rebuild speed) builds what the plain
    rule builds, for any stored data, fields missing or not; an unknown type stays an UnknownEvent."""
    event_type, data = case
    try:
        expected: Any = _reference_decode(EVENT_TYPES[event_type], data)
    except TypeError as exc:
        expected = type(exc)
    try:
        found: Any = decode(event_type, data)
    except TypeError as exc:
        found = type(exc)
    assert found == expected
    assert decode("no.such.type", data).type == "unknown"
