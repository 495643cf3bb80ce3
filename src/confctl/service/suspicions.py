"""Lost callbacks noticed as they happen: a per-process watch that has the Reconciler repair one conference.

Every state this process stores (a callback, a command, an outcome) is shown to `observe`, which looks at it in
memory with the pure checks of domain/lost_callbacks.py: no read, no round trip on the write path. A sign is
given time before it counts: a SequenceNumber gap and a conference still `init` with its starters joined get
`grace_s` (callbacks arrive out of order and concurrently: the missing one may still come); a leg still dialing
is looked at once its ring time, Twilio's buffer and `dialing_margin_s` are over. Then the conference is read
again from the log (another process may have stored the missing fact meanwhile) and, if the sign is still
there, the Reconciler synchronizes it with Twilio in a background task, the sign being the corrections'
`trigger`: sequence_gap, start_missing or dialing_overdue.

One timer per conference (later signs fold into it), one reconciliation of it at a time, and each sign (a gap,
the legs of a missing start, an overdue leg) is reconciled at most once: a SequenceNumber that never comes, or a
leg Twilio still rings, does not make confctl read Twilio over and over (the periodic sweep still looks). After
Twilio could not be read, the conference is looked at again `retry_s` later. Each process watches what it
stored itself; the log it reads again holds what every process stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from confctl.domain import lost_callbacks as lc
from confctl.domain.model import Conference
from confctl.service.conferences import ConferenceRepository
from confctl.service.ports import Clock

log = structlog.get_logger(__name__)

# The Reconciler's `reconcile(conference_id, trigger)`: the corrections stored, None when Twilio could not be read.
Reconcile = Callable[[str, str], Awaitable[list[str] | None]]
SEQUENCE_GAP, START_MISSING, DIALING_OVERDUE = "sequence_gap", "start_missing", "dialing_overdue"
MAX_REMEMBERED = 10_000  # conferences whose reconciled signs are remembered (the least recently seen forgotten)


@dataclass(frozen=True, slots=True)
class WatchPolicy:
    """How long each sign may last before the conference is reconciled (settings `CONFCTL_RECONCILE_*`)."""

    grace_s: float = 2.0
    dialing_margin_s: float = 30.0
    retry_s: float = 30.0


@dataclass(slots=True)
class _Reconciled:
    """The signs of one conference already reconciled: none of them is a sign again."""

    through: int = 0  # every missing SequenceNumber up to this one
    start: tuple[str, ...] = ()  # the joined legs of a conference-start found missing
    legs: frozenset[str] = frozenset()  # legs found overdue, by CallSid


_NOTHING = _Reconciled()  # shared, never changed


@dataclass(slots=True)
class _Watch:
    """One conference's pending looks, as event-loop times (None: nothing to look at)."""

    gap_at: float | None = None
    gap_through: int = 0  # the highest SequenceNumber seen when the gap was noticed
    start_at: float | None = None
    ring_at: float | None = None
    not_before: float = 0.0  # after Twilio could not be read
    handle: asyncio.TimerHandle | None = None
    handle_at: float = math.inf
    busy: bool = False  # being looked at (and maybe reconciled) now

    def due(self) -> float | None:
        times = [t for t in (self.gap_at, self.start_at, self.ring_at) if t is not None]
        return max(min(times), self.not_before) if times else None

    def cancel(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
        self.handle, self.handle_at = None, math.inf


class SuspicionWatch:
    """Notices lost callbacks in the states this process stores and has those conferences reconciled."""

    def __init__(self, conferences: ConferenceRepository, reconcile: Reconcile, clock: Clock,
                 policy: WatchPolicy | None = None, *, on_cleared: Callable[[str], None] | None = None) -> None:
        self.conferences = conferences
        self.reconcile = reconcile
        self.clock = clock
        self.policy = policy or WatchPolicy()
        self.on_cleared = on_cleared  # a sign that went away within its grace (no Twilio read)
        self._watches: dict[str, _Watch] = {}
        self._reconciled: OrderedDict[str, _Reconciled] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    def observe(self, state: Conference) -> None:
        """Look at a state just stored. In memory only, and it never raises: the fact is stored already."""
        try:
            self._observe(state)
        except Exception as exc:
            log.warning("reconcile.watch.failed", conference_id=state.id, error=repr(exc))

    def _observe(self, state: Conference) -> None:
        watch = self._watches.get(state.id)
        if self._closed or state.status == "completed":
            if watch is not None:
                self._forget(state.id, watch)
            self._reconciled.pop(state.id, None)
            return
        done = self._reconciled.get(state.id, _NOTHING)
        gap = bool(lc.missing_after(state, done.through))
        start = lc.start_missing(state)
        deadline = lc.next_ring_deadline(state, self.policy.dialing_margin_s, done.legs)
        starting = bool(start) and start != done.start
        if watch is None:
            if not (gap or starting or deadline):
                return  # the common case: nothing to watch
            watch = self._watches[state.id] = _Watch()
        now = asyncio.get_running_loop().time()
        if gap and watch.gap_at is None:
            watch.gap_at, watch.gap_through = now + self.policy.grace_s, state.last_sequence
        elif not gap and watch.gap_at is not None:
            watch.gap_at = None
            self._cleared(SEQUENCE_GAP)
        if not starting:
            watch.start_at = None
        elif watch.start_at is None:
            watch.start_at = now + self.policy.grace_s
        watch.ring_at = None if deadline is None else now + max(0.0, (deadline - self.clock.now()).total_seconds())
        self._arm(state.id, watch)

    def _arm(self, conference_id: str, watch: _Watch) -> None:
        """Set the conference's one timer for its earliest look (or forget it: nothing left to look at)."""
        due = watch.due()
        if due is None:
            if not watch.busy:
                self._forget(conference_id, watch)
            return
        if watch.busy or watch.handle_at <= due:
            return  # looked at again when the reconciliation ends, or earlier anyway (and then re-armed)
        watch.cancel()
        watch.handle = asyncio.get_running_loop().call_at(due, self._fire, conference_id)
        watch.handle_at = due

    def _fire(self, conference_id: str) -> None:
        watch = self._watches.get(conference_id)
        if watch is None or self._closed:
            return
        watch.handle, watch.handle_at, watch.busy = None, math.inf, True
        task = asyncio.create_task(self._look(conference_id, watch), name=f"confctl.suspicions.{conference_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _look(self, conference_id: str, watch: _Watch) -> None:
        """Read the conference again; reconcile it if a sign whose time has come is still there."""
        state: Conference | None = None
        try:
            state = await self.conferences.load(conference_id)
            if state.status != "completed" and await self._check(state, watch):
                state = await self.conferences.load(conference_id)  # what the repair stored (and since)
        except Exception as exc:  # the database is away: look again later
            log.warning("reconcile.watch.look_failed", conference_id=conference_id, error=repr(exc))
            watch.not_before = asyncio.get_running_loop().time() + self.policy.retry_s
        finally:
            watch.busy = False
        if self._watches.get(conference_id) is not watch:
            return  # forgotten meanwhile (ended, or the watch closed)
        if state is not None:
            self.observe(state)  # signs left, or new ones, get their own time
        else:
            self._arm(conference_id, watch)

    async def _check(self, state: Conference, watch: _Watch) -> bool:
        """Reconcile for the signs that are due and still there; whether it was tried."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        done = self._reconciled.get(state.id, _NOTHING)
        triggers: list[str] = []
        through: int | None = None
        start: tuple[str, ...] = ()
        legs: frozenset[str] = frozenset()
        if watch.gap_at is not None and watch.gap_at <= now:
            watch.gap_at = None
            if lc.missing_between(state, done.through, watch.gap_through):
                triggers.append(SEQUENCE_GAP)
                through = watch.gap_through
            else:
                self._cleared(SEQUENCE_GAP)  # filled within its grace (by any process)
        if watch.start_at is not None and watch.start_at <= now:
            watch.start_at = None
            start = lc.start_missing(state)
            if start and start != done.start:
                triggers.append(START_MISSING)
            else:
                start = ()
        if watch.ring_at is not None and watch.ring_at <= now:
            watch.ring_at = None
            legs = frozenset(lc.overdue_legs(state, self.clock.now(), self.policy.dialing_margin_s)) - done.legs
            if legs:
                triggers.append(DIALING_OVERDUE)
        if not triggers:
            return False
        # One sync repairs whatever drifted: it is stored under the first sign, and every sign looked at is done.
        notes = await self.reconcile(state.id, triggers[0])
        if notes is None:
            watch.not_before = loop.time() + self.policy.retry_s
            return True
        done = self._remember(state.id)
        if through is not None:
            done.through = max(done.through, through)
        if start:
            done.start = start
        done.legs |= legs
        return True

    def _remember(self, conference_id: str) -> _Reconciled:
        done = self._reconciled.get(conference_id)
        if done is None:
            done = self._reconciled[conference_id] = _Reconciled()
            while len(self._reconciled) > MAX_REMEMBERED:
                self._reconciled.popitem(last=False)
        self._reconciled.move_to_end(conference_id)
        return done

    def _forget(self, conference_id: str, watch: _Watch) -> None:
        watch.cancel()
        if self._watches.get(conference_id) is watch:
            del self._watches[conference_id]

    def _cleared(self, trigger: str) -> None:
        if self.on_cleared is not None:
            self.on_cleared(trigger)

    async def aclose(self) -> None:
        """Stop watching: timers cancelled, looks under way cancelled."""
        self._closed = True
        for conference_id, watch in list(self._watches.items()):
            self._forget(conference_id, watch)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
