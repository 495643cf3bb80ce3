"""The one sequential outbound queue: callbacks and TwiML fetches leave in the order they happened.

One worker sends one request at a time, so by default callbacks arrive in event order. Fault injection
acts on callbacks only (never on TwiML fetches): a delay before each, duplicates queued again as the same
signed request, and shuffling of the callbacks waiting in the queue. The worker also holds back while a
REST request is being served, so the REST answer goes out before the callbacks it caused, as with Twilio.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import structlog

from confctl.simulator.faults import Faults
from confctl.simulator.model.effects import Callback, Fetch
from confctl.simulator.signing import WebhookRequest, webhook_request

log = structlog.get_logger(__name__)

# Twilio caps every call-related HTTP request at 15 s.
_REQUEST_TIMEOUT_S = 15.0
LOG_LIMIT = 10_000

FetchHandler = Callable[[Fetch, int | None, str], None]


@dataclass(slots=True)
class _Outgoing:
    effect: Callback | Fetch
    request: WebhookRequest
    duplicate: bool = False


class Delivery:
    """Queue plus worker; the worker starts lazily on the first `put` (a running loop is needed)."""

    def __init__(self, client: httpx.AsyncClient, auth_token: str, faults: Faults, on_fetched: FetchHandler) -> None:
        self._client = client
        self._auth_token = auth_token
        self._faults = faults
        self._on_fetched = on_fetched
        self._queue: deque[_Outgoing] = deque()
        self._wakeup: asyncio.Event | None = None
        self._worker: asyncio.Task[None] | None = None
        self._busy = False
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

    # --- queue ----------------------------------------------------------------------------------------

    def put(self, effect: Callback | Fetch) -> None:
        request = webhook_request(self._auth_token, effect.url, effect.method, effect.params)
        self._queue.append(_Outgoing(effect, request))
        self._ensure_worker()
        self._wake()

    def idle(self) -> bool:
        return not self._queue and not self._busy and self._rest_inflight == 0

    async def aclose(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        self._queue.clear()

    def _ensure_worker(self) -> None:
        if self._worker is None or self._worker.done():
            self._wakeup = asyncio.Event()
            self._worker = asyncio.get_running_loop().create_task(self._run(), name="simulator-delivery")

    def _wake(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()

    async def _run(self) -> None:
        assert self._wakeup is not None
        while True:
            while not self._queue or self._rest_inflight:
                self._wakeup.clear()
                await self._wakeup.wait()
            self._busy = True
            try:
                await self._deliver(self._next())
            except Exception:  # the queue must survive any one bad delivery
                log.exception("simulator.delivery.failed")
            finally:
                self._busy = False

    def _next(self) -> _Outgoing:
        if self._faults.callback_reorder and len(self._queue) > 1:
            slots = [i for i, item in enumerate(self._queue) if isinstance(item.effect, Callback)]
            items = [self._queue[i] for i in slots]
            self._faults.rng.shuffle(items)
            for slot, item in zip(slots, items, strict=True):
                self._queue[slot] = item
        return self._queue.popleft()

    async def _deliver(self, item: _Outgoing) -> None:
        effect = item.effect
        if isinstance(effect, Callback) and self._faults.callback_delay_ms > 0:
            await asyncio.sleep(self._faults.callback_delay_ms / 1000)
        status, text, error = await self._send(item.request)
        self.log.append(
            {
                "kind": effect.kind if isinstance(effect, Callback) else "voice",
                "method": item.request.method,
                "url": item.request.url,
                "params": dict(effect.params),
                "status": status,
                "error": error,
                "duplicate": item.duplicate,
            }
        )
        if isinstance(effect, Fetch):
            self._on_fetched(effect, status, text)
        elif not item.duplicate and self._faults.duplicate():
            self._queue.append(_Outgoing(effect, item.request, duplicate=True))

    async def _send(self, request: WebhookRequest) -> tuple[int | None, str, str | None]:
        try:
            response = await self._client.request(
                request.method,
                request.url,
                content=request.body,
                headers=request.headers,
                timeout=_REQUEST_TIMEOUT_S,
            )
        except httpx.HTTPError as exc:
            # Twilio retries only a failed connect, once; the simulator does not retry at all.
            log.warning("simulator.delivery.unreachable", url=request.url, error=repr(exc))
            return None, "", repr(exc)
        return response.status_code, response.text, None
