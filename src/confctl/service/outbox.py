"""The outbox worker: runs the effects that appends queued, stores each outcome, and resumes orphans.

A plan's effects were stored with the facts that decided them, claimed by this process. The worker runs them
in order, in the background: after each Twilio answer it stores the outcome event and the row's completion in
one append (and the domain's reactions, whose own effects it then runs too). The first failure stores the
failure (a dial failed, a command failed, the transfer failed) and skips the rest of the plan.

Webhooks hand their plans over and answer at once; commands wait on their plan's outcome (bounded). When a
process dies its effects are found by the others, or by itself restarted (`recover`, at start-up and every
`poll_s`): each is reconciled from Twilio before it is sent again, so a dial Twilio already has is not sent
twice; then the conference is synchronized from Twilio, so what its callbacks said while nobody listened
(a leg that joined, one that left) is stored too. At start-up every conference whose transfer is still
moving is synchronized as well: its callbacks may have been lost with no effect left pending.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from confctl.domain import command_events as ce
from confctl.domain import effects as fx
from confctl.domain.effects import Plan, decode_effect
from confctl.domain.events import DomainEvent
from confctl.domain.model import Conference
from confctl.service.conferences import Change, ConferenceRepository
from confctl.service.effects import EffectRunner
from confctl.service.gateway import TwilioError, TwilioGateway, TwilioUnavailable
from confctl.service.ports import Clock, EffectCompletion, Outbox, PendingEffect, ReadModel
from confctl.service.sync import synchronize

log = structlog.get_logger(__name__)

TwilioFailure = (TwilioError, TwilioUnavailable)
STALE_S = 30.0  # a plan of this process with no task running it for this long is resumed by the sweep
# The conference whose plan the current task runs: reactions it stores start at once, not after it.
_running_for: contextvars.ContextVar[str | None] = contextvars.ContextVar("confctl_plan_of", default=None)


@dataclass(frozen=True, slots=True)
class QueuedEffect:
    """One outbox row to run: its id and the effect it describes."""

    id: int
    effect: fx.Effect


def _just(event: DomainEvent) -> Callable[[Conference], Plan]:
    """A decision that stores one outcome (and whatever the domain does about it)."""
    return lambda _state: Plan(events=[event])


@dataclass(frozen=True, slots=True)
class EffectRetry:
    """How long an effect is tried again while Twilio cannot be reached: exponential backoff from `initial_s`
    to `max_s` between attempts, for at most `give_up_s`; then its failure is stored."""

    initial_s: float = 0.5
    max_s: float = 30.0
    give_up_s: float = 600.0


class EffectWorker:
    """Runs this process's plans and takes over those of dead processes."""

    def __init__(self, conferences: ConferenceRepository, runner: EffectRunner, outbox: Outbox,
                 gateway: TwilioGateway, clock: Clock, *, poll_s: float = 1.0,
                 read_model: ReadModel | None = None, retry: EffectRetry | None = None) -> None:
        self.conferences = conferences
        self.read_model = read_model
        self.runner = runner
        self.outbox = outbox
        self.gateway = gateway
        self.clock = clock
        self.poll_s = poll_s
        self.retry = retry or EffectRetry()
        self._tasks: set[asyncio.Task[None]] = set()
        self._tails: dict[str, asyncio.Task[None]] = {}  # the last plan started per conference
        self._plans: set[str] = set()  # the plans this process is running (or about to)
        self._sweeper: asyncio.Task[None] | None = None
        conferences.run_effects = self.submit

    @property
    def worker_id(self) -> str:
        """Who this process is in the outbox."""
        return self.conferences.worker_id

    def submit(self, conference_id: str, change: Change, metadata: Mapping[str, Any]) -> asyncio.Task[None] | None:
        """Run the plan of a stored change in the background; the task ends with its first failure, if any.

        The repository calls this for every change it stores (`run_effects`)."""
        if not change.plan.effects:
            return None
        queued = [QueuedEffect(i, e) for i, e in zip(change.effect_ids, change.plan.effects, strict=True)]
        return self._spawn(conference_id, self._run(conference_id, queued, metadata, change.plan.transfer_id,
                                                    reconcile=False), change.plan_id)

    def _spawn(self, conference_id: str, work: Coroutine[Any, Any, None], plan_id: str) -> asyncio.Task[None]:
        """Run a plan after the plans of its conference stored before it (their effects reach Twilio first: a
        cancel's unhold never overtakes the hold of the transfer it cancels). The reactions of a running plan's
        outcomes run at once: that plan waits for them."""
        reaction = _running_for.get() == conference_id
        previous = None if reaction else self._tails.get(conference_id)
        task: asyncio.Task[None] = asyncio.create_task(self._after(previous, conference_id, work))
        self._tasks.add(task)
        self._plans.add(plan_id)
        task.add_done_callback(self._done)
        task.add_done_callback(lambda _t: self._plans.discard(plan_id))
        if not reaction:  # a reaction ends before the plan it belongs to: that plan stays the tail
            self._tails[conference_id] = task
            task.add_done_callback(lambda t: self._tails.pop(conference_id, None)
                                   if self._tails.get(conference_id) is t else None)
        return task

    @staticmethod
    async def _after(previous: asyncio.Task[None] | None, conference_id: str, work: Coroutine[Any, Any, None]) -> None:
        if previous is not None:
            try:
                await asyncio.wait([previous])
            except BaseException:
                work.close()
                raise
        _running_for.set(conference_id)
        await work

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            if not isinstance(exc, TwilioFailure):
                log.error("outbox.plan.crashed", error=repr(exc))

    async def _run(self, conference_id: str, queued: Sequence[QueuedEffect], metadata: Mapping[str, Any],
                   transfer_id: str | None, *, reconcile: bool) -> None:
        for position, item in enumerate(queued):
            try:
                # Only the first can have been in flight when its process died.
                outcome = None if await self._obsolete(conference_id, item.effect) else \
                    await self._attempt(conference_id, item, reconcile=reconcile and position == 0)
            except TwilioFailure as exc:
                log.warning("twilio.effect.failed", conference_id=conference_id, effect=type(item.effect).__name__,
                            error=str(exc))
                change = await self.conferences.change(
                    conference_id, self.runner.failure(item.effect, exc, transfer_id), metadata=metadata,
                    completes=[EffectCompletion(item.id, "failed", error=str(exc), skip_rest=True)])
                await self._follow(conference_id, change, metadata)  # e.g. a failed transfer unholds the customer
                raise
            if outcome is None:
                await self.conferences.change(conference_id, self._not_dialed(item.effect), metadata=metadata,
                                              completes=[EffectCompletion(item.id, "skipped", skip_rest=True)])
                log.info("outbox.effect.obsolete", conference_id=conference_id, effect=fx.kind_of(item.effect))
                return
            change = await self.conferences.change(conference_id, _just(outcome), metadata=metadata,
                                                   completes=[EffectCompletion(item.id, "done")])
            await self._follow(conference_id, change, metadata)

    def _not_dialed(self, effect: fx.Effect) -> Callable[[Conference], Plan]:
        """What a dial left unsent because its transfer ended first leaves behind: a leg that failed."""
        assert isinstance(effect, fx.Dial)
        return _just(ce.ParticipantDialFailed(label=effect.label, reason="not dialed: the transfer ended first",
                                              at=self.clock.now().isoformat()))

    async def _attempt(self, conference_id: str, item: QueuedEffect, *, reconcile: bool) -> DomainEvent | None:
        """Twilio's answer to one effect, trying again with backoff while Twilio cannot be reached.

        A refusal (TwilioError) is final. While Twilio cannot be reached (TwilioUnavailable: connect errors,
        timeouts, 5xx, 429) the effect is tried again until `retry.give_up_s`, and its row stays pending with its
        attempts and last error: a hold, an unhold, a kick are what the stored state already says, so they must
        happen. A dial is different: Twilio may have acted on it although its answer was lost, so it is never
        sent again blindly; Twilio is asked (`reconcile`, by label) until it answers: the leg it has is the
        outcome, and when it has none the dial failed. None: the effect lost its point while it waited.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.retry.give_up_s
        delay = self.retry.initial_s
        lost: TwilioUnavailable | None = None  # the failure of a dial whose outcome is not known yet
        while True:
            try:
                if reconcile:
                    found = await self.runner.reconcile(conference_id, item.effect)
                    if found is not None:
                        return found
                    if lost is not None:
                        raise lost  # Twilio has no such leg: the dial failed (and is not sent twice)
                return await self.runner.one(conference_id, item.effect)
            except TwilioUnavailable as exc:
                if isinstance(item.effect, fx.Dial) and exc is not lost:
                    lost = exc
                elif exc is lost:
                    raise
                if loop.time() + delay > deadline:
                    raise
                log.warning("twilio.effect.retrying", conference_id=conference_id, effect=fx.kind_of(item.effect),
                            in_s=delay, error=str(exc))
                with contextlib.suppress(Exception):  # the database may be down too: the sleep goes on anyway
                    await self.outbox.postpone(item.id, str(exc), delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry.max_s)
                reconcile = True
                if await self._obsolete(conference_id, item.effect):
                    return None

    async def _obsolete(self, conference_id: str, effect: fx.Effect) -> bool:
        """Whether an effect lost its point while it waited: the dial of a transfer that ended meanwhile (it was
        cancelled, or the customer left) must not ring anyone."""
        if not isinstance(effect, fx.Dial) or effect.transfer_id is None:
            return False
        state = await self.conferences.load(conference_id)
        transfer = state.transfer(effect.transfer_id)
        if transfer is None or transfer.is_active:
            return False
        leg = state.find(effect.label)
        return leg is None or leg.call_sid is None  # not dialed yet (a dialed one is ended by the transfer's end)

    async def _follow(self, conference_id: str, change: Change, metadata: Mapping[str, Any]) -> None:
        """Wait for the effects of the reactions to an outcome; their failures are stored, not raised."""
        if change.effects_done is not None:
            with contextlib.suppress(*TwilioFailure):
                await change.effects_done

    # Orphans: effects of processes that died.

    async def recover(self) -> int:
        """Take over the effects of dead workers and run them; returns how many plans were resumed.

        This process's own plans whose run ended without finishing them (their outcome could not be stored: the
        database was away) are resumed the same way, once they are `STALE_S` old and no task runs them."""
        orphans = await self.outbox.orphans(self.worker_id)
        taken = {e.id for e in orphans}
        orphans += [e for e in await self.outbox.stale(self.worker_id, STALE_S)
                    if e.plan_id not in self._plans and e.id not in taken]
        plans: dict[str, list[PendingEffect]] = {}
        for effect in orphans:
            plans.setdefault(effect.plan_id, []).append(effect)
        for plan_id, effects in plans.items():
            ordered = sorted(effects, key=lambda e: e.seq)
            log.warning("outbox.orphan.resumed", plan_id=plan_id, conference_id=ordered[0].stream_id,
                        effects=len(ordered))
            self._spawn(ordered[0].stream_id, self._resume(ordered), plan_id)
        return len(plans)

    async def _resume(self, effects: Sequence[PendingEffect]) -> None:
        first = effects[0]
        queued = [QueuedEffect(e.id, decode_effect(e.kind, e.payload)) for e in effects]
        try:
            await self._run(first.stream_id, queued, first.metadata, first.transfer_id, reconcile=True)
        except TwilioFailure:
            pass  # stored as the plan's failure
        finally:
            await self._synchronize(first.stream_id)

    async def _synchronize(self, conference_id: str) -> None:
        """Store what Twilio says of the conference now (callbacks may have been lost while nobody ran)."""
        state = await self.conferences.load(conference_id)
        if not state.exists or state.status == "completed":
            return
        try:
            notes = await synchronize(self.conferences, self.gateway, state, "confctl",
                                      self.clock.now().isoformat())
        except TwilioFailure as exc:
            log.warning("outbox.sync.failed", conference_id=conference_id, error=str(exc))
            return
        if notes:
            log.warning("outbox.sync.corrected", conference_id=conference_id, corrections=notes)

    async def resync_moving_transfers(self) -> int:
        """Synchronize every conference whose transfer is still moving: at start-up, what the callbacks of a
        process that died said (a target that joined or failed while nobody listened) is found this way."""
        if self.read_model is None:
            return 0
        moving = await self.read_model.moving_transfers()
        for conference_id in moving:
            await self._synchronize(conference_id)
        return len(moving)

    async def _sweep(self) -> None:
        try:
            await self.recover()
            await self.resync_moving_transfers()
        except Exception as exc:  # the sweep must outlive a database outage
            log.warning("outbox.startup.failed", error=repr(exc))
        while True:
            await asyncio.sleep(self.poll_s)
            try:
                await self.recover()
            except Exception as exc:  # the sweep must outlive a database outage
                log.warning("outbox.sweep.failed", error=repr(exc))

    def start(self) -> None:
        """Sweep for orphans now and every `poll_s`."""
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.create_task(self._sweep(), name="confctl.outbox.sweep")

    async def aclose(self, grace_s: float = 5.0) -> None:
        """Stop sweeping; give running plans `grace_s` to finish, then cancel them (their rows stay claimed by
        this worker, whose lock goes with the process: whoever comes next resumes them)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=grace_s)
        tasks = [t for t in (self._sweeper, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._sweeper = None
