"""A database outage as the service layer sees it: the error stores raise, and facts stored later.

Stores raise `StoreUnavailable` when the database cannot be reached in time (down, frozen, restarting), so
callers answer 503 instead of hanging; an append that raises it may or may not have been stored (`unknown`).

`DeferredFacts` is for the one fact that must not wait: the voice webhook answers its TwiML (which needs no
stored state) even when its fact cannot be stored, and hands the fact here. It is stored again and again,
oldest first, until the database takes it; its dedupe key makes a store that did happen after all (an
append whose outcome was unknown) harmless. The facts live in this process only: a process that dies
during the outage loses them, and only reconciliation from Twilio can bring them back.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

log = structlog.get_logger(__name__)


class StoreUnavailable(Exception):
    """The database did not answer in time or refused the connection: try again later (HTTP 503).

    `unknown`: an append that was already on its way to the database when it failed; it may have been
    stored. Otherwise nothing was stored.
    """

    def __init__(self, detail: str, *, unknown: bool = False) -> None:
        super().__init__(detail)
        self.unknown = unknown


Store = Callable[[], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class DeferredRetry:
    """Pause between attempts, growing from `initial_s` to `max_s` while the database stays away; each
    attempt is given at most `attempt_s`."""

    initial_s: float = 0.25
    max_s: float = 2.0  # attempts cost nothing while the database is known to be down: they fail at once
    attempt_s: float = 10.0


class DeferredFacts:
    """Facts already answered to Twilio but not yet stored, stored in order once the database answers."""

    def __init__(self, retry: DeferredRetry | None = None, *, limit: int = 10_000,
                 on_change: Callable[[int], None] | None = None) -> None:
        self.retry = retry or DeferredRetry()
        self.limit = limit
        self.on_change = on_change  # told how many are waiting whenever that changes (a gauge)
        self._waiting: dict[str, Store] = {}  # by dedupe key, oldest first
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def pending(self) -> int:
        """How many facts wait to be stored."""
        return len(self._waiting)

    def defer(self, key: str, store: Store) -> bool:
        """Keep `store` (which stores the fact of dedupe key `key`) until it succeeds; False if over the limit.

        The same key deferred twice (Twilio repeating its request) is kept once.
        """
        if key not in self._waiting:
            if len(self._waiting) >= self.limit or self._closed:
                log.error("store.deferred.dropped", key=key, waiting=len(self._waiting),
                          hint="left to reconciliation from Twilio")
                return False
            self._waiting[key] = store
            self._changed()
        if self._task is None or self._task.done():
            # A process-wide loop: never under the context (request id, ...) of whichever request started it.
            self._task = asyncio.create_task(self._run(), name="confctl.deferred_facts",
                                             context=contextvars.Context())
        return True

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change(len(self._waiting))

    async def _run(self) -> None:
        pause = self.retry.initial_s
        while self._waiting:
            if await self.flush():
                pause = self.retry.initial_s
                continue
            await asyncio.sleep(pause)
            pause = min(pause * 2, self.retry.max_s)

    async def flush(self) -> bool:
        """Try to store every waiting fact, oldest first; False at the first the database would not take."""
        for key, store in list(self._waiting.items()):
            try:
                async with asyncio.timeout(self.retry.attempt_s):
                    await store()
            except (StoreUnavailable, TimeoutError) as exc:
                log.info("store.deferred.waiting", waiting=len(self._waiting), error=str(exc))
                return False
            except Exception:  # not the database's absence: trying again would fail the same way forever
                log.exception("store.deferred.failed", key=key, hint="left to reconciliation from Twilio")
            else:
                log.info("store.deferred.stored", key=key)
            del self._waiting[key]
            self._changed()
        return True

    async def aclose(self, grace_s: float = 2.0) -> None:
        """Stop; what is still waiting gets one last bounded attempt, and what stays is logged as lost."""
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._waiting:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace_s):
                    await self.flush()
        if self._waiting:
            log.error("store.deferred.lost", keys=list(self._waiting), hint="left to reconciliation from Twilio")
