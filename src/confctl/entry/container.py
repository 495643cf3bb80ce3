"""The composition root's product: every wired service the routers use, kept on `app.state.container`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from confctl.adapters.pg_outbox import PgOutbox
from confctl.adapters.signature import SignatureChecker
from confctl.entry.settings import Settings
from confctl.service.callbacks import CallbackService
from confctl.service.conferences import ConferenceRepository
from confctl.service.control import ControlService
from confctl.service.gateway import TwilioGateway
from confctl.service.live import CoalescedReads, LocalNotifier, Notifier
from confctl.service.outbox import EffectWorker
from confctl.service.ports import Clock, EventStore, IdempotencyStore, ReadModel
from confctl.service.reconcile import Reconciler
from confctl.service.suspicions import SuspicionWatch


class SystemClock:
    """The wall clock, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class Container:
    """Everything wired: settings, stores, services, the Twilio gateway."""

    settings: Settings
    store: EventStore
    read_model: ReadModel
    idempotency: IdempotencyStore
    conferences: ConferenceRepository
    callbacks: CallbackService
    signatures: SignatureChecker
    gateway: TwilioGateway | None = None
    control: ControlService | None = None
    clock: Clock = field(default_factory=SystemClock)
    live: Notifier = field(default_factory=LocalNotifier)  # wakes live-update (SSE) readers
    worker: EffectWorker | None = None  # runs the outbox (None: no Twilio gateway, read-only)
    feed: CoalescedReads = field(init=False)  # what live streams read (identical reads at once shared)
    outbox: PgOutbox | None = None
    reconciler: Reconciler | None = None  # compares live conferences with Twilio every CONFCTL_RECONCILE_S
    suspicions: SuspicionWatch | None = None  # has a conference reconciled when one of its callbacks was lost

    def __post_init__(self) -> None:
        self.feed = CoalescedReads(self.store)

    async def aclose(self) -> None:
        """Stop the background work and release connections, in dependency order."""
        if self.suspicions is not None:
            await self.suspicions.aclose()
        if self.reconciler is not None:
            await self.reconciler.aclose()
        if self.worker is not None:
            await self.worker.aclose()
        await self.live.aclose()
        if self.outbox is not None:
            await self.outbox.aclose()
        closing = getattr(self.store, "aclose", None)
        if closing is not None:
            await closing()
