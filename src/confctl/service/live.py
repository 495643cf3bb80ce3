"""Live updates: following the event store as it grows, woken by a notifier.

A wake-up carries no events, only "look again": a follower always re-reads the store from the last event it
handed out. So an event is never delivered twice or skipped, whatever the notifier does: a wake-up that
arrives late, twice or never (a lost NOTIFY, a listener reconnecting) only changes when the next read
happens, and a periodic re-read bounds that.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

from confctl.service.ports import EventStore, StoredEvent


class Subscription(Protocol):
    """One follower's wake-ups."""

    async def wait(self, seconds: float) -> bool:
        """Wait until woken or `seconds` pass; True when woken. A wake-up since the last wait counts."""
        ...


class Notifier(Protocol):
    """Wakes followers when a stream (or, with stream_id None, any stream) may have new events."""

    def subscribe(self, stream_id: str | None) -> AbstractAsyncContextManager[Subscription]:
        """Be woken for `stream_id`'s events (None: every stream's) while the context is open."""
        ...

    async def aclose(self) -> None:
        """Stop: release what wake-ups need (a database connection, ...)."""
        ...


class _Waiter:
    """A subscription in a LocalNotifier: one flag, set by any number of wake-ups, cleared by `wait`."""

    def __init__(self, stream_id: str | None) -> None:
        self.stream_id = stream_id
        self._woken = asyncio.Event()

    def wake(self) -> None:
        self._woken.set()

    async def wait(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self._woken.wait(), seconds)
        except TimeoutError:
            return False
        # Cleared before the follower reads again: a wake-up during that read is kept for the next wait.
        self._woken.clear()
        return True


class LocalNotifier:
    """In-process fan-out of wake-ups: what a store's appends (or a database listener) publish to."""

    def __init__(self) -> None:
        self._waiters: set[_Waiter] = set()

    @property
    def subscribers(self) -> int:
        """How many subscriptions are open."""
        return len(self._waiters)

    def publish(self, stream_id: str | None) -> None:
        """Wake the followers of `stream_id` and of every stream; None wakes everyone."""
        for waiter in self._waiters:
            if stream_id is None or waiter.stream_id is None or waiter.stream_id == stream_id:
                waiter.wake()

    async def aclose(self) -> None:
        """Nothing to release."""

    @asynccontextmanager
    async def subscribe(self, stream_id: str | None) -> AsyncIterator[Subscription]:
        """A subscription that lasts as long as the context."""
        waiter = _Waiter(stream_id)
        self._waiters.add(waiter)
        try:
            yield waiter
        finally:
            self._waiters.discard(waiter)


class CoalescedReads:
    """The store's reads for followers, with identical reads in flight at once shared ("single flight").

    One NOTIFY wakes every follower of a conference at the same moment, each after the same last id: without
    this, 200 browsers on one conference meant 200 identical queries per event; with it, one.
    """

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self._flying: dict[tuple[str | None, int, int | None], asyncio.Task[list[StoredEvent]]] = {}

    @property
    def in_flight(self) -> int:
        """Distinct reads under way."""
        return len(self._flying)

    async def _shared(self, key: tuple[str | None, int, int | None],
                      read: Callable[[], Awaitable[list[StoredEvent]]]) -> list[StoredEvent]:
        task = self._flying.get(key)
        if task is None:
            # A task of its own: a follower that goes away (cancelled) does not cancel the others' read.
            task = asyncio.ensure_future(read())
            self._flying[key] = task
            task.add_done_callback(lambda _t: self._flying.pop(key, None))
        return list(await asyncio.shield(task))

    async def read_stream(self, stream_id: str, *, after_version: int = 0,
                          limit: int | None = None) -> list[StoredEvent]:
        return await self._shared((stream_id, after_version, limit),
                                  lambda: self.store.read_stream(stream_id, after_version=after_version, limit=limit))

    async def read_all(self, *, after_position: int = 0, limit: int = 1000) -> list[StoredEvent]:
        return await self._shared((None, after_position, limit),
                                  lambda: self.store.read_all(after_position=after_position, limit=limit))


class FeedReader(Protocol):
    """What a follower reads: an EventStore's two reads."""

    async def read_stream(self, stream_id: str, *, after_version: int = 0,
                          limit: int | None = None) -> list[StoredEvent]: ...

    async def read_all(self, *, after_position: int = 0, limit: int = 1000) -> list[StoredEvent]: ...


async def follow(
    store: FeedReader,
    notifier: Notifier,
    *,
    stream_id: str | None,
    after: int,
    poll_s: float,
    lifetime_s: float | None = None,
    batch: int = 500,
) -> AsyncGenerator[StoredEvent, None]:
    """Every event after `after` (a stream version, or with stream_id None a global position), then each new one.

    Ends after `lifetime_s` seconds (None: never; the caller closes the generator when it is done).
    """
    loop = asyncio.get_running_loop()
    deadline = None if lifetime_s is None else loop.time() + lifetime_s
    last = after
    async with notifier.subscribe(stream_id) as subscription:
        # Subscribed before the first read: an event stored from here on either is in that read or wakes us.
        while True:
            while True:
                if stream_id is None:
                    found = await store.read_all(after_position=last, limit=batch)
                else:
                    found = await store.read_stream(stream_id, after_version=last, limit=batch)
                for event in found:
                    last = event.position if stream_id is None else event.version
                    yield event
                if len(found) < batch:
                    break
            wait_s = poll_s if deadline is None else min(poll_s, deadline - loop.time())
            if wait_s <= 0:
                return
            await subscription.wait(wait_s)
