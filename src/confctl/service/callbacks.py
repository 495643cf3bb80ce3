"""Handlers for Twilio's webhooks: each stores one fact (or nothing, for a repeat) with the domain's reactions.

Facts are always stored, whatever their arrival order: the state orders them by SequenceNumber. The dedupe
key, built from Twilio's own ids, makes a repeated delivery store nothing, inside the append's transaction.
What the reactions ask of Twilio (a transfer moving on, a stray leg hung up) is queued in the outbox by the
same append and run in the background: a webhook is answered once its fact is durable, never waiting on Twilio.

During a database outage a callback raises StoreUnavailable and the webhook answers 503: nothing is
acknowledged that is not stored, and the fact comes back with Twilio's retry or with reconciliation. The
voice webhook alone never waits for the database beyond `voice_wait_s`: the caller must reach the
conference, so its fact is stored later by `DeferredFacts` (service/outage.py).
"""

from __future__ import annotations

import asyncio

import structlog

from confctl.domain import events as ev
from confctl.domain.effects import Plan
from confctl.service.conferences import Change, ConferenceRepository
from confctl.service.outage import DeferredFacts, StoreUnavailable
from confctl.service.ports import ReadModel

log = structlog.get_logger(__name__)

TWILIO_ACTOR = "twilio"


def conference_id_for(call_sid: str) -> str:
    """API.md §4: the conference of an inbound call is `room-{CallSid}`."""
    return f"room-{call_sid}"


class CallbackService:
    """Stores Twilio's facts about conferences, calls and recordings."""

    def __init__(self, conferences: ConferenceRepository, read_model: ReadModel, *,
                 deferred: DeferredFacts | None = None, voice_wait_s: float = 2.0) -> None:
        self.conferences = conferences
        self.read_model = read_model
        self.deferred = deferred or DeferredFacts()
        self.voice_wait_s = voice_wait_s

    async def _record(
        self, conference_id: str, fact: ev.DomainEvent, dedupe_key: str, sequence: int | None = None
    ) -> Change:
        metadata = {"actor": TWILIO_ACTOR, "causation": dedupe_key, "sequence_number": sequence}
        change = await self.conferences.change(
            conference_id, lambda _state: Plan(events=[fact]), metadata=metadata, dedupe_key=dedupe_key
        )
        # Stored and repeated callbacks are counted by /metrics, not logged one line each (the hot path). The
        # reactions' effects already run in the background (change.effects_done): Twilio gets its answer now.
        return change

    async def inbound_call(self, fact: ev.ConferenceCreated) -> Change | None:
        """The voice webhook: open the customer's conference (a repeat of the same call is a no-op).

        None when the fact could not be stored within `voice_wait_s`: it is deferred, stored as soon as the
        database takes it, and the caller is put through meanwhile (the TwiML needs no stored state).
        """
        conference_id, key = conference_id_for(fact.customer_call_sid), f"voice:{fact.customer_call_sid}"
        try:
            async with asyncio.timeout(self.voice_wait_s):
                return await self._record(conference_id, fact, key)
        except (StoreUnavailable, TimeoutError) as exc:
            waiting = self.deferred.defer(key, lambda: self._record(conference_id, fact, key))
            log.warning("twilio.voice.deferred", conference_id=conference_id, call_sid=fact.customer_call_sid,
                        error=str(exc) or type(exc).__name__, kept=waiting)
            return None

    async def conference_event(self, friendly_name: str, fact: ev.DomainEvent, dedupe_key: str,
                               sequence: int) -> Change:
        """A conference status callback (start, end, join, leave, mute, hold, modify).

        A conference nobody stored yet (its voice fact deferred during an outage, or simply overtaken) is not
        refused: the fact is stored and starts the stream, and the deferred voice fact joins it later. Facts
        are folded in SequenceNumber order and flags only ever add up, so arrival order changes nothing;
        answering 503 instead would lose the fact whenever Twilio does not retry.
        """
        return await self._record(friendly_name, fact, dedupe_key, sequence)

    async def call_status(
        self, fact: ev.CallStatusChanged, conference_hint: str | None, dedupe_key: str
    ) -> Change | None:
        """A call status callback of a leg confctl dialed; None when the call belongs to no conference."""
        conference_id = conference_hint or await self.read_model.stream_for_call(fact.call_sid)
        if conference_id is None:
            log.warning("twilio.callback.unknown_call", call_sid=fact.call_sid, status=fact.status)
            return None
        return await self._record(conference_id, fact, dedupe_key, fact.sequence)

    async def recording_status(
        self, fact: ev.RecordingStatusChanged, conference_hint: str | None, conference_sid: str | None,
        dedupe_key: str,
    ) -> Change | None:
        """A conference recording status callback."""
        conference_id = conference_hint
        if conference_id is None and conference_sid:
            conference_id = await self.read_model.stream_for_twilio_sid(conference_sid)
        if conference_id is None:
            log.warning("twilio.callback.unknown_recording", recording_sid=fact.recording_sid)
            return None
        return await self._record(conference_id, fact, dedupe_key)
