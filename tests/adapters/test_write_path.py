"""The write path on real PostgreSQL: group commit, the lock-free global order, the outbox and its liveness.

The event-store contract (test_event_store_contract.py) says what any store does; these say how the
PostgreSQL one does it: many facts per transaction, followers that never skip a late commit, effects queued
with the facts, and effects of a dead worker taken over exactly once.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from confctl.adapters.memory_store import MemoryEventStore
from confctl.adapters.pg_outbox import PgOutbox
from confctl.adapters.pg_pool import LazyPool
from confctl.adapters.pg_store import PostgresEventStore
from confctl.service.outage import StoreUnavailable
from confctl.service.ports import ConcurrencyError, EffectCompletion, NewEffect, NewEvent, StoredEvent


def new(kind: str, n: int = 0, text: str = "x") -> NewEvent:
    return NewEvent(type=kind, data={"n": n, "text": text}, metadata={"actor": "test"})


def effect(plan_id: str, seq: int, claimed_by: str = "worker-a") -> NewEffect:
    return NewEffect(plan_id=plan_id, seq=seq, kind="hang_up", payload={"label": f"l{seq}", "call_sid": "CA1"},
                     metadata={"actor": "test"}, claimed_by=claimed_by)


@pytest.fixture(params=["memory", "postgres"])
async def store(request: pytest.FixtureRequest,
                engine: AsyncEngine) -> AsyncIterator[MemoryEventStore | PostgresEventStore]:
    """Both implementations."""
    if request.param == "memory":
        yield MemoryEventStore()
        return
    pg = PostgresEventStore(engine)
    yield pg
    await pg.aclose()


async def _append_with_retry(store: MemoryEventStore | PostgresEventStore, stream_id: str, kind: str) -> None:
    while True:
        version = len(await store.read_stream(stream_id))
        try:
            await store.append(stream_id, [new(kind)], expected_version=version)
            return
        except ConcurrencyError:
            await asyncio.sleep(random.random() / 1000)


async def test_many_concurrent_writers_to_many_conferences_lose_and_duplicate_nothing(
        store: MemoryEventStore | PostgresEventStore) -> None:
    """30 conferences, 8 writers each racing on the version: every stream ends 1..8 without a gap, every
    position unique and in order."""
    await asyncio.gather(*(_append_with_retry(store, f"room-{s}", f"w{w}") for s in range(30) for w in range(8)))
    for s in range(30):
        events = await store.read_stream(f"room-{s}")
        assert [e.version for e in events] == list(range(1, 9))
        assert sorted(e.type for e in events) == sorted(f"w{w}" for w in range(8))
    everything = await store.read_all(limit=10_000)
    positions = [e.position for e in everything]
    assert len(everything) == 240 and positions == sorted(set(positions))


async def test_effects_are_queued_with_the_facts_and_completed_with_the_outcome(engine: AsyncEngine) -> None:
    """An append queues its effects (ids back in order), a conflicting append queues none, a completion is
    stored with its outcome's events, and a failure skips the rest of its plan."""
    store = PostgresEventStore(engine)
    outbox = PgOutbox(store.pool, "worker-a")
    try:
        result = await store.append("room-1", [new("intent")], expected_version=0,
                                    effects=[effect("PL1", 0), effect("PL1", 1), effect("PL1", 2)])
        assert len(result.effect_ids) == 3 and list(result.effect_ids) == sorted(result.effect_ids)
        with pytest.raises(ConcurrencyError):
            await store.append("room-1", [new("late")], expected_version=0, effects=[effect("PL2", 0)])
        assert await outbox.pending("PL2") == []
        first, second, _third = result.effect_ids
        await store.append("room-1", [new("outcome")], expected_version=1,
                           completes=[EffectCompletion(first, "done")])
        assert [e.id for e in await outbox.pending("PL1")] == [second, _third]
        await store.append("room-1", [new("failed")], expected_version=2,
                           completes=[EffectCompletion(second, "failed", error="busy", skip_rest=True)])
        assert await outbox.pending("PL1") == []
        pool = await store.pool.get()
        outcomes = await pool.fetch("SELECT outcome, error FROM effects WHERE plan_id = 'PL1' ORDER BY seq")
        assert [(r["outcome"], r["error"]) for r in outcomes] == [("done", None), ("failed", "busy"), ("skipped", None)]
    finally:
        await outbox.aclose()
        await store.aclose()


async def test_concurrent_appends_are_committed_together_and_each_caller_gets_its_own_answer(
        engine: AsyncEngine) -> None:
    """With one committer busy, the appends that queue meanwhile go in one transaction (group commit); each
    caller still gets its own versions and positions."""
    store = PostgresEventStore(engine, committers=1)
    sizes: list[int] = []
    store.committer.on_batch = sizes.append
    try:
        results = await asyncio.gather(*(store.append(f"room-{i}", [new("a", i), new("b", i)], expected_version=0)
                                         for i in range(40)))
    finally:
        await store.aclose()
    assert sum(sizes) == 40 and len(sizes) < 40 and max(sizes) > 1
    for i, result in enumerate(results):
        assert result.version == 2 and [e.stream_id for e in result.events] == [f"room-{i}"] * 2
        assert [e.version for e in result.events] == [1, 2]
    positions = [e.position for r in results for e in r.events]
    assert len(set(positions)) == 80


async def test_a_bad_append_in_a_batch_fails_only_its_own_caller(engine: AsyncEngine) -> None:
    """A fact PostgreSQL refuses (a NUL character, which jsonb cannot hold) fails its caller alone: the
    appends committed in the same batch are all stored."""
    store = PostgresEventStore(engine, committers=1)
    try:
        results = await asyncio.gather(
            *(store.append(f"room-{i}", [new("a", i, text="bad\x00" if i == 3 else "ok")], expected_version=0)
              for i in range(12)),
            return_exceptions=True,
        )
    finally:
        await store.aclose()
    failed = [i for i, r in enumerate(results) if isinstance(r, BaseException)]
    assert failed == [3]
    assert isinstance(results[3], asyncpg.PostgresError)
    assert len(await PostgresEventStore(engine).read_all()) == 11


async def _held_append(engine: AsyncEngine, stream_id: str) -> tuple[asyncpg.Connection, asyncpg.Transaction]:
    """An append inside a transaction left open: what a slow committer looks like to everyone else."""
    conn = await LazyPool(engine).connect()
    tx = conn.transaction()
    await tx.start()
    await conn.fetch("SELECT * FROM confctl_append($1::jsonb)",
                     [{"stream_id": stream_id, "expected_version": 0, "dedupe_key": None,
                       "events": [{"type": "late", "data": {}, "metadata": {}}]}])
    return conn, tx


async def test_a_follower_never_skips_an_event_that_commits_late(engine: AsyncEngine) -> None:
    """An append that started first but commits last: a follower does not pass it by while it is open, and gets
    it (then the rest, once each) after it commits."""
    store = PostgresEventStore(engine)
    try:
        conn, tx = await _held_append(engine, "room-slow")
        await asyncio.gather(*(store.append(f"room-{i}", [new("quick")], expected_version=0) for i in range(5)))
        # Everything committed after the open transaction began is held back until it ends.
        assert await store.read_all() == []
        await tx.commit()
        await conn.close()
        seen = await store.read_all()
        assert seen[0].stream_id == "room-slow"
        assert sorted(e.stream_id for e in seen[1:]) == [f"room-{i}" for i in range(5)]
        assert await store.read_all(after_position=seen[-1].position) == []
    finally:
        await store.aclose()


async def test_a_follower_misses_and_repeats_nothing_while_many_writers_commit_in_any_order(
        engine: AsyncEngine) -> None:
    """Two stores (as two processes) append concurrently, some inside slow transactions; a follower reading in
    a loop ends up with exactly the log, once each, in position order."""
    stores = [PostgresEventStore(engine, committers=3), PostgresEventStore(engine, committers=3)]
    followed: list[StoredEvent] = []
    done = asyncio.Event()

    async def follow() -> None:
        last = 0
        while True:
            finished = done.is_set()
            batch = await stores[0].read_all(after_position=last, limit=50)
            followed.extend(batch)
            if batch:
                last = batch[-1].position
            elif finished:
                return
            await asyncio.sleep(0.001)

    async def slow(i: int) -> None:
        conn, tx = await _held_append(engine, f"room-slow-{i}")
        await asyncio.sleep(random.random() / 20)
        await tx.commit()
        await conn.close()

    async def write(i: int) -> None:
        await stores[i % 2].append(f"room-{i}", [new("a"), new("b")], expected_version=0)

    follower = asyncio.create_task(follow())
    try:
        await asyncio.gather(*(write(i) for i in range(120)), *(slow(i) for i in range(8)))
    finally:
        done.set()
        await follower
        for s in stores:
            await s.aclose()
    everything = await PostgresEventStore(engine).read_all(limit=10_000)
    assert len(everything) == 248
    assert [e.position for e in followed] == [e.position for e in everything]


async def test_a_dead_workers_effects_are_taken_over_once_and_a_live_ones_never(engine: AsyncEngine) -> None:
    """Worker A holds its liveness lock: B takes none of A's effects. A's connection goes (as when its process
    is killed): B takes them all, C racing with B takes none of them, and nothing is taken twice."""
    store = PostgresEventStore(engine)
    a, b, c = (PgOutbox(store.pool, name) for name in ("worker-a", "worker-b", "worker-c"))
    try:
        assert await a.alive() and await b.alive() and await c.alive()
        result = await store.append("room-1", [new("intent")], expected_version=0,
                                    effects=[effect("PL1", 0, "worker-a"), effect("PL1", 1, "worker-a")])
        assert await b.orphans("worker-b") == []
        await a.aclose()
        taken_b, taken_c = await asyncio.gather(b.orphans("worker-b"), c.orphans("worker-c"))
        assert sorted(e.id for e in [*taken_b, *taken_c]) == sorted(result.effect_ids)
        assert not (taken_b and taken_c)  # one of them took the lot
        assert await b.orphans("worker-b") == [] and await c.orphans("worker-c") == []
    finally:
        for outbox in (a, b, c):
            await outbox.aclose()
        await store.aclose()


async def test_appends_fail_at_once_when_the_database_cannot_be_reached() -> None:
    """With no database to reach, every queued append fails quickly with StoreUnavailable caused by the
    connection's error (the committers neither hang nor spin on the queue)."""
    from confctl.adapters.database import create_engine

    engine = create_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none", pool_size=1)
    store = PostgresEventStore(engine, committers=2)
    try:
        results = await asyncio.wait_for(asyncio.gather(
            *(store.append(f"room-{i}", [new("a")], expected_version=0) for i in range(10)),
            return_exceptions=True), 10)
    finally:
        await store.aclose()
        await engine.dispose()
    assert all(isinstance(r, StoreUnavailable) and isinstance(r.__cause__, OSError) for r in results), results
