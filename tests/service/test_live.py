"""Following the event store: wake-ups are only hints, the store is re-read, nothing is skipped or repeated."""

from __future__ import annotations

import asyncio

from confctl.adapters.memory_store import MemoryEventStore
from confctl.service.live import CoalescedReads, LocalNotifier, follow
from confctl.service.ports import NewEvent, StoredEvent


async def _append(store: MemoryEventStore, stream_id: str, count: int = 1) -> None:
    await store.append(stream_id, [NewEvent("x.happened", {"n": n}) for n in range(count)], expected_version=None)


async def test_a_follower_finds_new_events_by_polling_when_no_wake_up_comes() -> None:
    """With a notifier that never fires (a lost NOTIFY), the periodic re-read still delivers every event once."""
    store = MemoryEventStore()
    await _append(store, "room-a", 2)
    events = follow(store, LocalNotifier(), stream_id="room-a", after=1, poll_s=0.05)
    try:
        assert (await anext(events)).version == 2
        await _append(store, "room-a", 2)
        await _append(store, "room-b")
        got = [await asyncio.wait_for(anext(events), 1) for _ in range(2)]
        assert [(e.stream_id, e.version) for e in got] == [("room-a", 3), ("room-a", 4)]
    finally:
        await events.aclose()


async def test_a_wake_up_delivers_at_once_and_the_global_feed_pages_through_batches() -> None:
    """A published wake-up makes the follower read now; the global feed reads past a full batch in order."""
    store, notifier = MemoryEventStore(), LocalNotifier()
    await _append(store, "room-a", 5)
    events = follow(store, notifier, stream_id=None, after=0, poll_s=60, batch=2)
    try:
        first = [await asyncio.wait_for(anext(events), 1) for _ in range(5)]
        await _append(store, "room-b")
        notifier.publish("room-b")
        last = await asyncio.wait_for(anext(events), 1)
    finally:
        await events.aclose()
    assert [e.position for e in [*first, last]] == [1, 2, 3, 4, 5, 6]
    assert notifier.subscribers == 0


async def test_wake_ups_reach_the_right_subscribers_and_are_kept_until_waited_for() -> None:
    """A stream's wake-up reaches its followers and the global ones, not others'; one sent before wait() counts."""
    notifier = LocalNotifier()
    async with notifier.subscribe("room-a") as a, notifier.subscribe("room-b") as b, \
            notifier.subscribe(None) as everything:
        notifier.publish("room-a")
        assert await a.wait(0.5) and await everything.wait(0.5)
        assert not await b.wait(0.05)
        assert not await a.wait(0.05)  # consumed by the first wait
        notifier.publish(None)
        assert await b.wait(0.5)
        assert notifier.subscribers == 3
    assert notifier.subscribers == 0


async def test_a_follower_ends_after_its_lifetime() -> None:
    """With a lifetime, the follower stops by itself once it has handed out what there was."""
    store = MemoryEventStore()
    await _append(store, "room-a", 3)
    got: list[StoredEvent] = []
    async with asyncio.timeout(2):
        async for event in follow(store, LocalNotifier(), stream_id="room-a", after=0, poll_s=0.05, lifetime_s=0.2):
            got.append(event)
    assert [e.version for e in got] == [1, 2, 3]


class CountingStore(MemoryEventStore):
    """The in-memory store, counting stream reads and answering them a little later (as a database does)."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    async def read_stream(self, stream_id: str, *, after_version: int = 0,
                          limit: int | None = None) -> list[StoredEvent]:
        self.reads += 1
        await asyncio.sleep(0.01)
        return await super().read_stream(stream_id, after_version=after_version, limit=limit)


async def test_many_followers_woken_together_share_one_read_per_event() -> None:
    """50 followers of one conference, woken by one wake-up: one read of the store, every follower gets the
    event; one follower going away mid-read does not fail the others."""
    store, notifier = CountingStore(), LocalNotifier()
    shared = CoalescedReads(store)
    await _append(store, "room-a")
    followers = [follow(shared, notifier, stream_id="room-a", after=1, poll_s=60) for _ in range(50)]
    pending = [asyncio.ensure_future(anext(f)) for f in followers]
    try:
        for _ in range(500):  # until each made its first read (found nothing) and waits for a wake-up
            if notifier.subscribers == 50 and not shared.in_flight:
                break
            await asyncio.sleep(0.01)
        store.reads = 0
        await _append(store, "room-a")
        notifier.publish("room-a")
        await asyncio.sleep(0.001)
        pending[0].cancel()
        got = await asyncio.wait_for(asyncio.gather(*pending[1:]), 2)
        assert {e.version for e in got} == {2}
        assert store.reads == 1
    finally:
        for f in followers[1:]:
            await f.aclose()
