"""The outbound queue: callbacks and TwiML fetches, sent by up to `callback_concurrency` senders at once.

By default one sender sends one request at a time, so callbacks arrive in event order, and it holds back
while a REST request is being served, so the REST answer goes out before the callbacks it caused. Twilio
promises neither: each callback is a request of its own and "arrival order is not guaranteed"
(shared/twilio/webhooks.md, `SequenceNumber`). Two faults take the kindness away: `callback_concurrency`
lets N requests be in flight at once, each with its own attempts, so a slow or retried callback no longer
holds back the ones behind it; `callback_early` drops the hold, and the REST answer waits (at most
`EARLY_WAIT_S`) for the callbacks its request caused, so they reach the receiver before the answer does.
A call's TwiML fetches stay one at a time whatever the concurrency (the call runs one program at a time),
and so do its fetches of each kind of media.

Each request is delivered as its URL's connection overrides say (`overrides.py`): attempts bounded by the
connect, read and total timeouts, retried as `rc` / `rp` allow (by default once, on a failed connect only),
every retry the same signed request. Each attempt is one entry of the delivery log. Fault injection acts on
callbacks only (never on TwiML fetches): callbacks dropped, a delay before each, duplicates queued again as
the same signed request, and shuffling of the callbacks waiting in the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
import structlog

from confctl.simulator.attempts import attempts
from confctl.simulator.faults import Faults
from confctl.simulator.model.effects import Callback, Fetch
from confctl.simulator.overrides import InvalidOverrides, parse_overrides
from confctl.simulator.signing import WebhookRequest, webhook_request

log = structlog.get_logger(__name__)

LOG_LIMIT = 10_000
# Under `callback_early`, the longest a REST answer waits for its callbacks: long enough for a receiver on
# the same machine to take them, short enough that a receiver which blocks on the answer is not deadlocked.
EARLY_WAIT_S = 0.25
_EARLY_START_S = 0.001

FetchHandler = Callable[[Fetch, int | None, str, str], None]  # (fetch, status, body, content type)


@dataclass(slots=True, eq=False)
class _Outgoing:
    effect: Callback | Fetch
    request: WebhookRequest
    number: int  # in the order queued, from 1
    duplicate: bool = False
    finished: asyncio.Event = field(default_factory=asyncio.Event)


def _fetch_key(fetch: Fetch) -> tuple[str, str]:
    return fetch.kind, fetch.call_sid


class Delivery:
    """Queue plus senders; the dispatcher starts lazily on the first `put` (a running loop is needed)."""

    def __init__(self, client: httpx.AsyncClient, auth_token: str, faults: Faults, on_fetched: FetchHandler) -> None:
        self._client = client
        self._auth_token = auth_token
        self._faults = faults
        self._on_fetched = on_fetched
        self._queue: deque[_Outgoing] = deque()
        self._queued = 0
        self._wakeup: asyncio.Event | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self._sending: dict[asyncio.Task[None], _Outgoing] = {}
        self._fetching: set[tuple[str, str]] = set()  # (kind, call) of each fetch in flight
        self._rest_inflight = 0
        # Bounded: `confctl dev` runs for hours; tests never come near the cap.
        self.log: deque[dict[str, object]] = deque(maxlen=LOG_LIMIT)

    # --- the REST gate --------------------------------------------------------------------------------

    def rest_started(self) -> None:
        self._rest_inflight += 1

    def rest_finished(self) -> None:
        self._rest_inflight -= 1
        if self._rest_inflight == 0:
            self._wake()

    def mark(self) -> int:
        """Where the queue stands now: `deliver_early(mark)` waits for what is queued after it."""
        return self._queued

    async def deliver_early(self, since: int) -> None:
        """Under `callback_early`, wait until the callbacks queued after `since` are delivered (bounded)."""
        if not self._faults.callback_early:
            return
        # A moment first, so what the operation set off without delay (a dialed leg's `initiated`) is queued.
        await asyncio.sleep(_EARLY_START_S)
        waiting = [item.finished for item in (*self._queue, *self._sending.values())
                   if item.number > since and isinstance(item.effect, Callback)]
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(EARLY_WAIT_S):
                for finished in waiting:
                    await finished.wait()

    # --- queue ----------------------------------------------------------------------------------------

    def put(self, effect: Callback | Fetch) -> None:
        request = webhook_request(self._auth_token, effect.url, effect.method, effect.params)
        self._enqueue(effect, request, duplicate=False)

    def idle(self) -> bool:
        return not self._queue and not self._sending and self._rest_inflight == 0

    async def aclose(self) -> None:
        tasks = [task for task in (self._dispatcher, *self._sending) if task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._dispatcher = None
        self._sending.clear()
        self._fetching.clear()
        for item in self._queue:
            item.finished.set()
        self._queue.clear()

    def _enqueue(self, effect: Callback | Fetch, request: WebhookRequest, *, duplicate: bool) -> None:
        self._queued += 1
        self._queue.append(_Outgoing(effect, request, self._queued, duplicate))
        if self._dispatcher is None or self._dispatcher.done():
            self._wakeup = asyncio.Event()
            self._dispatcher = asyncio.get_running_loop().create_task(self._run(), name="simulator-delivery")
        self._wake()

    def _wake(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()

    async def _run(self) -> None:
        assert self._wakeup is not None
        loop = asyncio.get_running_loop()
        while True:
            item = self._next()
            if item is None:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            if isinstance(item.effect, Fetch):
                self._fetching.add(_fetch_key(item.effect))
            self._sending[loop.create_task(self._send(item), name="simulator-delivery-send")] = item

    def _next(self) -> _Outgoing | None:
        """The next request to start, or None while all senders are busy, the gate is closed or none may go."""
        if not self._queue or len(self._sending) >= self._faults.callback_concurrency:
            return None
        if self._rest_inflight and not self._faults.callback_early:
            return None
        if self._faults.callback_reorder and len(self._queue) > 1:
            slots = [i for i, item in enumerate(self._queue) if isinstance(item.effect, Callback)]
            items = [self._queue[i] for i in slots]
            self._faults.rng.shuffle(items)
            for slot, item in zip(slots, items, strict=True):
                self._queue[slot] = item
        for index, item in enumerate(self._queue):
            if isinstance(item.effect, Fetch) and _fetch_key(item.effect) in self._fetching:
                continue  # that call's previous fetch of this kind first
            del self._queue[index]
            return item
        return None

    async def _send(self, item: _Outgoing) -> None:
        try:
            await self._deliver(item)
        except Exception:  # the queue must survive any one bad delivery
            log.exception("simulator.delivery.failed")
        finally:
            task = asyncio.current_task()
            if task is not None:
                self._sending.pop(task, None)
            if isinstance(item.effect, Fetch):
                self._fetching.discard(_fetch_key(item.effect))
            item.finished.set()
            self._wake()

    async def _deliver(self, item: _Outgoing) -> None:
        effect = item.effect
        is_callback = isinstance(effect, Callback)
        if is_callback and self._faults.drop():
            self._log(item, attempt=0, dropped=True, error="dropped by the callback_drop_rate fault")
            return
        if is_callback and self._faults.callback_delay_ms > 0:
            await asyncio.sleep(self._faults.callback_delay_ms / 1000)
        try:
            overrides = parse_overrides(effect.url)
        except InvalidOverrides as exc:
            # Twilio refuses the URL: no request is made, and a TwiML fetch fails as an unreachable one does.
            log.warning("simulator.delivery.invalid_overrides", url=effect.url, error=str(exc))
            self._log(item, attempt=0, error=str(exc), error_code=exc.code)
            if isinstance(effect, Fetch):
                self._on_fetched(effect, None, "", "")
            return
        made = await attempts(self._client, item.request, overrides)
        for attempt in made:
            self._log(item, attempt=attempt.number, status=attempt.status, error=attempt.error,
                      failure=attempt.failure, retried=attempt.retried, edge=attempt.edge,
                      elapsed_ms=attempt.elapsed_ms)
        last = made[-1]
        if last.status is None:
            log.warning("simulator.delivery.unreachable", url=item.request.url, error=last.error,
                        attempts=len(made))
        if isinstance(effect, Fetch):
            self._on_fetched(effect, last.status, last.text, last.content_type)
        elif not item.duplicate and self._faults.duplicate():
            self._enqueue(effect, item.request, duplicate=True)

    def _log(self, item: _Outgoing, *, attempt: int, status: int | None = None, error: str | None = None,
             error_code: int | None = None, failure: str | None = None, retried: bool = False,
             edge: str | None = None, elapsed_ms: float = 0.0, dropped: bool = False) -> None:
        """One entry per attempt (`attempt` from 1; 0 when no request was made: dropped or refused)."""
        effect = item.effect
        self.log.append(
            {
                "kind": effect.kind,  # a fetch's: voice, wait, hold or announce
                "method": item.request.method,
                "url": item.request.url,  # as sent: without the fragment
                "fragment": urlsplit(effect.url).fragment,
                "params": dict(effect.params),
                "status": status,
                "error": error,
                "error_code": error_code,
                "duplicate": item.duplicate,
                "dropped": dropped,
                "attempt": attempt,
                "failure": failure,
                "retried": retried,
                "edge": edge,
                "elapsed_ms": elapsed_ms,
            }
        )
