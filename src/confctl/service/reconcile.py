"""Reconciliation: a conference compared with Twilio, and each drift stored as a fact; every live one, periodically.

Twilio does not retry a callback that confctl answered 5xx (or could not be reached for, beyond what the
URL's connection overrides allow), so a fact can be lost while confctl or its database is down: alice hung up,
and confctl still shows her joined. Every `interval_s` one process (the one holding the sweep lock, so N
processes do not read Twilio N times) synchronizes each conference that is not completed (two Twilio reads
each, spread over half the interval, at most 20 conferences a second), with `sync`'s own
rules; each repair is a `*.corrected` event whose causation is `reconcile`, so the log says what drifted and
when. A conference Twilio has not reported yet (no ConferenceSid) is left alone while it is young: its TwiML
may still be running, and Twilio has no conference to show.

A conference is also reconciled at once when this process notices that one of its callbacks was lost
(service/suspicions.py). Every reconciliation, periodic or triggered, stores its corrections with a `trigger`
in their metadata (`periodic`, `sequence_gap`, `start_missing`, `dialing_overdue`), and they share this
process's budget of Twilio reads: at most CONCURRENCY at once, started at most MAX_RATE a second.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol

import structlog

from confctl.service.conferences import ConferenceRepository
from confctl.service.gateway import TwilioError, TwilioGateway, TwilioUnavailable
from confctl.service.ports import Clock, ReadModel
from confctl.service.sync import synchronize

log = structlog.get_logger(__name__)

CONCURRENCY = 4  # conferences read from Twilio at once during a sweep
SPREAD = 0.5  # a sweep spans at most this share of the interval
MAX_SPACING_S = 0.2  # few conferences need no spreading
MAX_RATE = 20.0  # conferences reconciled per second at most (two Twilio reads each)
YOUNG_S = 30.0  # a conference without a ConferenceSid younger than this is still being set up


class SweepLock(Protocol):
    """At most one holder across every process sharing the database."""

    def exclusive(self, name: str) -> contextlib.AbstractAsyncContextManager[bool]:
        """Try to take the lock `name` for the duration of the block; yields whether it was taken."""
        ...


class Pace:
    """At most `concurrency` holders at once, each let in at least 1/`rate` s after the one before."""

    def __init__(self, concurrency: int, rate: float) -> None:
        self._gate = asyncio.Semaphore(concurrency)
        self._spacing = 1 / rate
        self._next = 0.0

    async def __aenter__(self) -> None:
        await self._gate.acquire()
        try:
            now = asyncio.get_running_loop().time()
            start = max(now, self._next)
            self._next = start + self._spacing
            if start > now:
                await asyncio.sleep(start - now)
        except BaseException:
            self._gate.release()
            raise

    async def __aexit__(self, *exc: object) -> None:
        self._gate.release()


class Reconciler:
    """Sweeps live conferences every `interval_s` (0: never) and repairs what drifted from Twilio; `reconcile`
    repairs one conference now (what the lost-callback watch calls). `on_outcome(trigger, outcome)` hears of each
    conference reconciled: `repaired`, `in_sync` or `failed` (Twilio could not be read)."""

    def __init__(self, conferences: ConferenceRepository, read_model: ReadModel, gateway: TwilioGateway,
                 clock: Clock, *, interval_s: float, lock: SweepLock | None = None,
                 on_repair: Callable[[int], None] | None = None,
                 on_outcome: Callable[[str, str], None] | None = None) -> None:
        self.conferences = conferences
        self.read_model = read_model
        self.gateway = gateway
        self.clock = clock
        self.interval_s = interval_s
        self.lock = lock
        self.on_repair = on_repair
        self.on_outcome = on_outcome
        self._pace = Pace(CONCURRENCY, MAX_RATE)  # shared by the sweep and the triggered reconciliations
        self._task: asyncio.Task[None] | None = None

    async def sweep(self) -> int:
        """One pass over the live conferences (if this process holds the sweep lock); how many were repaired."""
        if self.lock is None:
            return await self._sweep()
        async with self.lock.exclusive("reconcile") as mine:
            return await self._sweep() if mine else 0

    async def _sweep(self) -> int:
        """Every live conference once, spread over half the interval and at most MAX_RATE a second (a burst of
        Twilio reads would compete with the calls themselves, and thousands of live conferences must not turn
        into thousands of reads at once): at most CONCURRENCY at once, started `spacing` apart. With more than
        MAX_RATE x interval/2 live conferences a sweep takes longer than the interval, and the next follows it."""
        ids = await self.read_model.live_conferences()  # ids only: no documents decoded
        spacing = max(1 / MAX_RATE, min(MAX_SPACING_S, self.interval_s * SPREAD / max(1, len(ids))))
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(conference_id: str) -> bool:
            try:
                return bool(await self.reconcile(conference_id))
            finally:
                gate.release()

        started: list[asyncio.Task[bool]] = []
        for index, conference_id in enumerate(ids):
            await gate.acquire()
            started.append(asyncio.create_task(one(conference_id)))
            if spacing and index < len(ids) - 1:
                await asyncio.sleep(spacing)
        return sum(await asyncio.gather(*started))

    async def reconcile(self, conference_id: str, trigger: str = "periodic") -> list[str] | None:
        """Bring one conference in line with Twilio; the corrections stored (empty when nothing drifted or there
        is nothing to compare yet), None when Twilio could not be read."""
        async with self._pace:
            state = await self.conferences.load(conference_id, remember=False)
            if not state.exists or state.status == "completed":
                return []
            now = self.clock.now()
            if state.twilio_sid is None and _younger(state.created_at, now, YOUNG_S):
                return []
            try:
                notes = await synchronize(self.conferences, self.gateway, state, "confctl", now.isoformat(),
                                          causation="reconcile", trigger=trigger)
            except (TwilioError, TwilioUnavailable) as exc:
                log.warning("reconcile.failed", conference_id=conference_id, trigger=trigger, error=str(exc))
                self._outcome(trigger, "failed")
                return None
        self._outcome(trigger, "repaired" if notes else "in_sync")
        if notes:
            log.warning("reconcile.repaired", conference_id=conference_id, trigger=trigger, corrections=notes)
            if self.on_repair is not None:
                self.on_repair(len(notes))
        return notes

    def _outcome(self, trigger: str, outcome: str) -> None:
        if self.on_outcome is not None:
            self.on_outcome(trigger, outcome)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.sweep()
            except Exception as exc:  # the sweep must outlive a database outage
                log.warning("reconcile.sweep.failed", error=repr(exc))

    def start(self) -> None:
        """Sweep every `interval_s` (nothing when it is 0)."""
        if self.interval_s > 0 and (self._task is None or self._task.done()):
            self._task = asyncio.create_task(self._run(), name="confctl.reconcile")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _younger(created_at: str | None, now: datetime, seconds: float) -> bool:
    if created_at is None:
        return True
    try:
        created = datetime.fromisoformat(created_at)
    except ValueError:
        return False
    return now - created < timedelta(seconds=seconds)
