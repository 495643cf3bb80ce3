"""Carries out the model's effects on the event loop: timers, the delivery queue, and `settle()`.

Nothing here needs a running loop until the first effect: timers and the delivery worker are created
lazily, so `create_simulator` works anywhere and the app runs under ASGITransport without lifespan.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

import httpx
import structlog

from confctl.simulator.delivery import Delivery
from confctl.simulator.faults import Faults
from confctl.simulator.model.effects import Callback, CancelTimer, Fetch, StartTimer
from confctl.simulator.model.world import World

log = structlog.get_logger(__name__)
T = TypeVar("T")

_SETTLE_POLL_S = 0.002


class Runtime:
    """The model plus the machinery that makes its time pass and its requests go out."""

    def __init__(
        self, world: World, auth_token: str, time_scale: float, client: httpx.AsyncClient, faults: Faults
    ) -> None:
        self.world = world
        self.faults = faults
        self._time_scale = time_scale
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self.delivery = Delivery(client, auth_token, faults, self._fetched)

    def apply(self, operation: Callable[[], T]) -> T:
        """Run one model operation and carry out its effects (also when it raises half-way)."""
        try:
            return operation()
        finally:
            self.flush()

    def flush(self) -> None:
        for effect in self.world.drain():
            if isinstance(effect, Callback | Fetch):
                self.delivery.put(effect)
            elif isinstance(effect, StartTimer):
                self._start_timer(effect)
            elif isinstance(effect, CancelTimer):
                handle = self._timers.pop(effect.key, None)
                if handle is not None:
                    handle.cancel()

    def _start_timer(self, timer: StartTimer) -> None:
        previous = self._timers.pop(timer.key, None)
        if previous is not None:
            previous.cancel()
        loop = asyncio.get_running_loop()
        self._timers[timer.key] = loop.call_later(timer.delay_s * self._time_scale, self._fire, timer)

    def _fire(self, timer: StartTimer) -> None:
        self._timers.pop(timer.key, None)
        try:
            self.apply(timer.action)
        except Exception:  # a broken timer must not take the loop's other callbacks down
            log.exception("simulator.timer.failed", key=timer.key)

    def _fetched(self, fetch: Fetch, status: int | None, body: str, content_type: str) -> None:
        if fetch.kind == "voice":
            self.apply(lambda: self.world.twiml_fetched(fetch.call_sid, fetch.program_id, status, body))
        else:
            self.apply(lambda: self.world.media_fetched(fetch, status, body, content_type))

    def idle(self) -> bool:
        return not self._timers and self.delivery.idle()

    # The public interface fixes `settle(timeout=...)`; callers need no asyncio.timeout around it.
    async def settle(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Return once no timer is pending and nothing is queued or being delivered."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        quiet_polls = 0
        # Two idle observations in a row: a delivery finishing may schedule work one loop turn later.
        while quiet_polls < 2:
            if self.idle():
                quiet_polls += 1
                await asyncio.sleep(0)
                continue
            quiet_polls = 0
            if loop.time() > deadline:
                raise TimeoutError(f"simulator not settled after {timeout}s: timers={sorted(self._timers)}")
            await asyncio.sleep(_SETTLE_POLL_S)

    async def aclose(self) -> None:
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        await self.delivery.aclose()
