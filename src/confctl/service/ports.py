"""Ports the service layer needs: the event store (with its read model) and a clock.

The store is generic: it stores (type, data, metadata) rows in streams. The read model row of a stream is
written in the same transaction as the events it reflects, so the two can never disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


class ConcurrencyError(Exception):
    """The stream moved on since it was read: `expected_version` is no longer its version."""

    def __init__(self, stream_id: str, expected: int, actual: int) -> None:
        super().__init__(f"stream {stream_id!r}: expected version {expected}, found {actual}")
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to append: its stable type, JSON data and metadata (actor, causation, sequence, …)."""

    type: str
    data: Mapping[str, Any]
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class NewEffect:
    """A Twilio request to make once the facts that decided it are stored (a row of the outbox).

    Effects of one plan share `plan_id` and run in `seq` order; `claimed_by` is the worker that will run it
    (the process that decided it), so no other process takes it while that one lives.
    """

    plan_id: str
    seq: int
    kind: str
    payload: Mapping[str, Any]
    metadata: Mapping[str, Any] = field(default_factory=dict)
    transfer_id: str | None = None
    claimed_by: str | None = None


@dataclass(frozen=True, slots=True)
class EffectCompletion:
    """The end of one effect, stored with the events of its outcome: `done` or `failed`.

    `skip_rest` marks the plan's later effects `skipped` (the first failure stops a plan).
    """

    effect_id: int
    outcome: str
    error: str | None = None
    skip_rest: bool = False


@dataclass(frozen=True, slots=True)
class PendingEffect:
    """An effect of the outbox not finished yet, as a worker claims it."""

    id: int
    stream_id: str
    plan_id: str
    seq: int
    kind: str
    payload: Mapping[str, Any]
    metadata: Mapping[str, Any]
    transfer_id: str | None
    attempts: int


@dataclass(frozen=True, slots=True)
class UnfinishedEffect:
    """An effect still to be done, as the API shows it: what, on whom, how often it failed, and the last error."""

    stream_id: str
    kind: str
    label: str | None
    transfer_id: str | None
    attempts: int
    error: str | None
    due_at: datetime


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as stored: its global position and its version within the stream."""

    position: int
    stream_id: str
    version: int
    type: str
    data: Mapping[str, Any]
    metadata: Mapping[str, Any]
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class ReadModelRow:
    """The projection of one conference stream, as the API serves it."""

    stream_id: str
    status: str
    created_at: datetime
    version: int
    document: Mapping[str, Any]
    twilio_sid: str | None = None
    call_sids: Sequence[str] = ()
    new_call_sids: Sequence[str] | None = None  # those not indexed yet, when known (None: maybe all of them)


@dataclass(frozen=True, slots=True)
class AppendResult:
    """What an append did: the stream's version after it, the stored events, or that it was a repeat."""

    version: int
    events: Sequence[StoredEvent]
    duplicate: bool = False
    effect_ids: Sequence[int] = ()


@dataclass(frozen=True, slots=True)
class Page:
    """One page of read-model documents, newest first."""

    items: Sequence[Mapping[str, Any]]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class IdempotentAnswer:
    """The first answer given to a request carrying an Idempotency-Key."""

    fingerprint: str
    status: int
    body: Mapping[str, Any]
    owner: str | None = None  # while in flight (status 0): the worker id of the process running it


# The read-model rows of the streams whose events it is given. A rebuild calls it once per chunk of whole streams
# (every event of each stream, in version order), never with the whole log at once: memory stays bounded.
Projector = Callable[[Sequence[StoredEvent]], Sequence[ReadModelRow]]


class EventStore(Protocol):
    """Append-only streams with optimistic concurrency, a global order and an idempotency inbox."""

    async def append(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        *,
        expected_version: int | None,
        dedupe_key: str | None = None,
        read_model: ReadModelRow | None = None,
        effects: Sequence[NewEffect] = (),
        completes: Sequence[EffectCompletion] = (),
    ) -> AppendResult:
        """Append atomically. `expected_version` None: any; 0: the stream must be new.

        A `dedupe_key` already stored makes the whole append a no-op (`duplicate=True`), decided inside the
        same transaction. Raises ConcurrencyError when the stream is not at `expected_version`. `effects` are
        queued in the outbox and `completes` finish outbox rows, in the same transaction as the events.
        """
        ...

    async def read_stream(
        self, stream_id: str, *, after_version: int = 0, limit: int | None = None
    ) -> list[StoredEvent]:
        """Events of one stream with version > after_version, oldest first."""
        ...

    async def read_all(self, *, after_position: int = 0, limit: int = 1000) -> list[StoredEvent]:
        """Events of every stream with position > after_position, in global order."""
        ...

    async def stream_ids(self) -> list[str]:
        """Every stream that has events."""
        ...


class ReadModel(Protocol):
    """Queries on the projection, and its rebuild."""

    async def get_document(self, stream_id: str) -> Mapping[str, Any] | None:
        """The projected document of one conference."""
        ...

    async def list_documents(self, *, status: str | None, limit: int, cursor: str | None) -> Page:
        """Conferences newest first, optionally of one status, paged by an opaque cursor."""
        ...

    async def stream_for_call(self, call_sid: str) -> str | None:
        """The conference a call belongs to."""
        ...

    async def stream_for_twilio_sid(self, conference_sid: str) -> str | None:
        """The conference with this Twilio ConferenceSid."""
        ...

    async def stream_for_transfer(self, transfer_id: str) -> str | None:
        """The conference a transfer belongs to."""
        ...

    async def moving_transfers(self) -> list[str]:
        """Conferences not completed whose transfer is still moving (dialing or consulting)."""
        ...

    async def live_conferences(self) -> list[str]:
        """The ids of every conference not completed, oldest first."""
        ...

    async def rebuild(self, project: Projector) -> int:
        """Replace the whole projection with what `project` makes of every stream, chunk by chunk, and swap it
        in atomically, appends going on meanwhile (their events are in the new projection); the row count."""
        ...


class IdempotencyStore(Protocol):
    """First answers to requests that carried an Idempotency-Key, per API key.

    A key is reserved before the request runs (status 0 while it is in flight), so a repeat that arrives
    while the first is still running waits for its answer instead of doing the work again. A reservation names
    its `owner` (the process's worker id): one whose owner died can be taken over.
    """

    async def reserve(self, scope: str, key: str, fingerprint: str, owner: str = "") -> IdempotentAnswer | None:
        """Take (scope, key) for a request; None when taken now, else what is stored (status 0: in flight)."""
        ...

    async def take_over(self, scope: str, key: str, dead_owner: str, owner: str) -> bool:
        """Take an in-flight reservation whose owner process is no longer alive; False when it is (or when
        someone else took it first)."""
        ...

    async def complete(self, scope: str, key: str, answer: IdempotentAnswer) -> None:
        """Store the answer of the request that reserved (scope, key)."""
        ...

    async def release(self, scope: str, key: str) -> None:
        """Give up a reservation whose request failed, so that a retry runs it again."""
        ...

    async def get_answer(self, scope: str, key: str) -> IdempotentAnswer | None:
        """What is stored for (scope, key), if anything."""
        ...


class Outbox(Protocol):
    """The effects queued by appends: found again when the process that was to run them died."""

    async def orphans(self, worker_id: str) -> list[PendingEffect]:
        """Take over every unfinished effect claimed by a worker that no longer lives; oldest first."""
        ...

    async def stale(self, worker_id: str, older_than_s: float) -> list[PendingEffect]:
        """Unfinished effects claimed by `worker_id` itself and stored more than `older_than_s` ago."""
        ...

    async def pending(self, plan_id: str) -> list[PendingEffect]:
        """The unfinished effects of one plan, in order."""
        ...

    async def postpone(self, effect_id: int, error: str, delay_s: float) -> None:
        """Record a failed attempt of an effect that will be tried again in `delay_s` (it stays pending)."""
        ...

    async def unfinished(self, stream_ids: Sequence[str]) -> list[UnfinishedEffect]:
        """The effects of these conferences not finished yet (still to run, or being retried), oldest first."""
        ...


class Clock(Protocol):
    """Now, as a timezone-aware UTC datetime."""

    def now(self) -> datetime:
        """The current time."""
        ...
