"""The one sequential outbound queue: callbacks and TwiML fetches leave in the order they happened.

One worker sends one request at a time, so by default callbacks arrive in event order. Each request is
delivered as its URL's connection overrides say (`overrides.py`): attempts bounded by the connect, read
and total timeouts, retried as `rc` / `rp` allow (by default once, on a failed connect only), every retry
the same signed request. Each attempt is one entry of the delivery log. Fault injection acts on callbacks
only (never on TwiML fetches): callbacks dropped, a delay before each, duplicates queued again as the same
signed request, and shuffling of the callbacks waiting in the queue. The worker also holds back while a
REST request is being served, so the REST answer goes out before the callbacks it caused, as with Twilio.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
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
                self._on_fetched(effect, None, "")
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
            self._on_fetched(effect, last.status, last.text)
        elif not item.duplicate and self._faults.duplicate():
            self._queue.append(_Outgoing(effect, item.request, duplicate=True))

    def _log(self, item: _Outgoing, *, attempt: int, status: int | None = None, error: str | None = None,
             error_code: int | None = None, failure: str | None = None, retried: bool = False,
             edge: str | None = None, elapsed_ms: float = 0.0, dropped: bool = False) -> None:
        """One entry per attempt (`attempt` from 1; 0 when no request was made: dropped or refused)."""
        effect = item.effect
        self.log.append(
            {
                "kind": effect.kind if isinstance(effect, Callback) else "voice",
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
