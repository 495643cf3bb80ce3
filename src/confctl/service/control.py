"""The control commands of API.md §3: one handler each. Load, decide (preconditions first), store the
intent with its reactions and its Twilio effects (the outbox) in one append, then wait for the outbox worker
to drive Twilio and store each outcome.

Two commands racing on one conference are serialized by the stream's version: the loser re-decides on the
new state (and, for a second transfer, gets transfer_in_progress).
"""

from __future__ import annotations

import asyncio
import contextvars
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from confctl.domain import announcements as an
from confctl.domain import commands as cmd
from confctl.domain import errors as de
from confctl.domain import transfers as tr
from confctl.domain.effects import Plan
from confctl.domain.model import Conference
from confctl.service.conferences import Change, ConferenceRepository
from confctl.service.gateway import TwilioGateway, TwilioUnavailable
from confctl.service.ports import Clock, Outbox, ReadModel, StoredEvent
from confctl.service.projection import conference_document, participant_document, recording_document, transfer_document
from confctl.service.sync import synchronize

# The Idempotency-Key of the request being served (set by the entry layer; scoped per API key), stored in the
# metadata of what it decides; and whether this request takes over the key of one whose process died.
REQUEST_KEY: contextvars.ContextVar[str | None] = contextvars.ContextVar("confctl_request_key", default=None)
RESUMED: contextvars.ContextVar[bool] = contextvars.ContextVar("confctl_request_resumed", default=False)


class ControlService:
    """Participants, hold and mute, supervision, transfers, recording, end and sync."""

    def __init__(self, conferences: ConferenceRepository, read_model: ReadModel, gateway: TwilioGateway,
                 clock: Clock, *, answer_timeout_s: float = 20.0, outbox: Outbox | None = None) -> None:
        self.conferences = conferences
        self.outbox = outbox
        self.read_model = read_model
        self.gateway = gateway
        self.clock = clock
        self.answer_timeout_s = answer_timeout_s

    def _now(self) -> str:
        return self.clock.now().isoformat()

    async def _run(self, conference_id: str, decide: Callable[[Conference], Plan], actor: str,
                   command: str) -> Change:
        metadata = {"actor": actor, "causation": command}
        key = REQUEST_KEY.get()
        if key is not None:
            metadata["request"] = key
            if RESUMED.get():
                stored = await self._stored_by(conference_id, key)
                if stored:
                    return await self._resumed(conference_id, stored)
        change = await self.conferences.change(conference_id, decide, metadata=metadata)
        task = change.effects_done
        if task is not None:
            # The answer is Twilio's; the plan goes on in the outbox whatever happens to this request.
            try:
                await asyncio.wait_for(asyncio.shield(task), self.answer_timeout_s)
            except TimeoutError:
                raise TwilioUnavailable(f"Twilio has not answered in {self.answer_timeout_s:g} s; the request "
                                        "goes on, and its outcome is stored when Twilio answers") from None
        return change

    async def _stored_by(self, conference_id: str, key: str) -> list[StoredEvent]:
        """The events a request with this Idempotency-Key stored (before its process died)."""
        return [e for e in await self.conferences.store.read_stream(conference_id)
                if e.metadata.get("request") == key]

    async def _resumed(self, conference_id: str, stored: list[StoredEvent]) -> Change:
        """A request whose process died after storing its intent, repeated: it is not decided again (that
        would dial twice); the outbox resumes its effects (`EffectWorker.recover`), and this waits for them."""
        await self._until_done(conference_id, None, "the request goes on, and its outcome is stored when Twilio "
                                                    "answers")
        state = await self.conferences.load(conference_id)
        return Change(state=state, events=stored, plan=Plan(events=[]))

    async def _until_done(self, conference_id: str, transfer_id: str | None, meanwhile: str) -> bool:
        """Wait (within the answer timeout) until the conference's unfinished effects (those of `transfer_id`
        only, when given) are done; whether there were any. TwilioUnavailable, saying `meanwhile`, past it."""
        if self.outbox is None:
            return False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.answer_timeout_s
        waited = False
        while any(transfer_id is None or u.transfer_id == transfer_id
                  for u in await self.outbox.unfinished([conference_id])):
            if loop.time() >= deadline:
                raise TwilioUnavailable(f"Twilio has not answered in {self.answer_timeout_s:g} s; {meanwhile}")
            waited = True
            await asyncio.sleep(0.2)
        return waited

    async def add_participant(self, conference_id: str, command: cmd.AddParticipant, actor: str) -> dict[str, Any]:
        """Dial an agent, external party or supervisor into the conference."""
        labels: list[str] = []

        def decide(state: Conference) -> Plan:
            plan, label = cmd.plan_add(state, command, self._now())
            labels[:] = [label]
            return plan

        accepted = await self._run(conference_id, decide, actor, "add_participant")
        label = labels[0] if labels else _stored(accepted, "participant.dial_requested", "label")
        # The answer is the leg as accepted (status `dialing`), with the CallSid Twilio gave it; what happened
        # since (ringing, joined) is on the event stream, so the answer does not depend on callback timing.
        leg = cmd.participant(accepted.state, label)
        now = cmd.participant(await self.conferences.load(conference_id), label)
        return participant_document(accepted.state, replace(leg, call_sid=now.call_sid))

    async def participant(self, conference_id: str, ref: str) -> dict[str, Any]:
        """One participant's document."""
        return await participant_query(self.conferences, conference_id, ref)

    async def change_participant(self, conference_id: str, ref: str, command: cmd.ChangeParticipant,
                                 actor: str, default_hold_url: str | None) -> dict[str, Any]:
        """Hold / unhold, mute / unmute, or switch a supervisor between monitor, coach and barge."""
        labels: list[str] = []

        def decide(state: Conference) -> Plan:
            plan = cmd.plan_change(state, ref, command, self._now(), default_hold_url)
            labels[:] = [cmd.participant(state, ref).label]
            return plan

        change = await self._run(conference_id, decide, actor, "change_participant")
        call_sid = cmd.participant(change.state, labels[0]).call_sid
        return await self.participant(conference_id, call_sid or labels[0])

    async def remove_participant(self, conference_id: str, ref: str, actor: str) -> None:
        """That leg leaves."""
        await self._run(conference_id, lambda s: cmd.plan_remove(s, ref, self._now()), actor, "remove_participant")

    async def announce(self, conference_id: str, command: an.MakeAnnouncement, actor: str) -> dict[str, Any]:
        """Play a URL to one joined participant, or to everyone in the conference."""
        change = await self._run(conference_id, lambda s: an.plan_announcement(s, command, self._now()), actor,
                                 "announce")
        # The label the decision found (`to` may have named the leg by its CallSid); also for a resumed request.
        to = next(e.data["to"] for e in change.events if e.type == an.AnnouncementRequested.type)
        return {"status": "accepted", "conference_id": conference_id, "url": command.url, "to": to}

    async def end_conference(self, conference_id: str, actor: str) -> None:
        """Every leg ends."""
        await self._run(conference_id, lambda s: cmd.plan_end(s, self._now()), actor, "end_conference")

    async def recording(self, conference_id: str, action: str, pause_behavior: str | None,
                        actor: str) -> dict[str, Any]:
        """Pause, resume or stop the recording."""
        await self._run(conference_id, lambda s: cmd.plan_recording(s, action, pause_behavior, self._now()),
                        actor, f"recording_{action}")
        document = recording_document(await self.conferences.load(conference_id))
        assert document is not None
        return document

    async def start_transfer(self, conference_id: str, command: tr.StartTransfer, actor: str,
                             hold_url: str | None) -> dict[str, Any]:
        """Start a warm or cold transfer."""
        transfer_id = "TR" + uuid.uuid4().hex
        accepted = await self._run(conference_id, lambda s: tr.plan_transfer(s, command, transfer_id, self._now(),
                                                                              hold_url), actor, "start_transfer")
        if not accepted.plan.events:  # a resumed request: the transfer its first run stored
            transfer_id = _stored(accepted, "transfer.requested", "transfer_id")
        # As accepted (`dialing`), with the target's CallSid once Twilio gave it; progress is on the events.
        transfer = accepted.state.transfer(transfer_id)
        assert transfer is not None
        target = (await self.conferences.load(conference_id)).find(transfer.target_label)
        return transfer_document(accepted.state, replace(transfer, target_call_sid=target.call_sid if target else None))

    async def _conference_of_transfer(self, transfer_id: str) -> str:
        return await conference_of_transfer(self.read_model, transfer_id)

    async def transfer(self, transfer_id: str) -> dict[str, Any]:
        """One transfer's document."""
        return await transfer_query(self.conferences, self.read_model, transfer_id)

    async def _finishing(self, conference_id: str, transfer_id: str, state: str) -> bool:
        """A repeat of the command that moved the transfer to `state` while its Twilio steps are still being
        retried (the first answer was 503): wait for them like the first did; False when there is nothing to
        wait for (then the command is decided as usual, and a real repeat is 409 invalid_transition)."""
        transfer = (await self.conferences.load(conference_id)).transfer(transfer_id)
        if transfer is None or transfer.state != state:
            return False
        return await self._until_done(conference_id, transfer_id, "the transfer's remaining steps are retried, "
                                                                  "see `pending` on the transfer")

    async def complete_transfer(self, transfer_id: str, actor: str) -> dict[str, Any]:
        """Warm transfer, consulting: hand the customer over."""
        conference_id = await self._conference_of_transfer(transfer_id)
        if await self._finishing(conference_id, transfer_id, "completed"):
            return await self.transfer(transfer_id)
        await self._run(conference_id, lambda s: tr.plan_complete(s, transfer_id, self._now()), actor,
                        "complete_transfer")
        return await self.transfer(transfer_id)

    async def cancel_transfer(self, transfer_id: str, actor: str) -> dict[str, Any]:
        """End the target leg; the customer comes back to `from`."""
        conference_id = await self._conference_of_transfer(transfer_id)
        if await self._finishing(conference_id, transfer_id, "cancelled"):
            return await self.transfer(transfer_id)
        await self._run(conference_id, lambda s: tr.plan_cancel(s, transfer_id, self._now()), actor,
                        "cancel_transfer")
        return await self.transfer(transfer_id)

    async def sync(self, conference_id: str, actor: str) -> dict[str, Any]:
        """Re-read Twilio and record every difference as a correction."""
        state = await self._existing(conference_id)
        corrections = await synchronize(self.conferences, self.gateway, state, actor, self._now())
        return {"conference": conference_document(await self.conferences.load(conference_id)),
                "corrections": corrections}

    async def _existing(self, conference_id: str) -> Conference:
        return await existing(self.conferences, conference_id)


def _stored(change: Change, event_type: str, field: str) -> str:
    """A field of the first stored event of a type (e.g. the label a dial request chose)."""
    value = next(e.data[field] for e in change.events if e.type == event_type)
    return str(value)


# Queries need no Twilio: the read endpoints use them directly.


async def existing(conferences: ConferenceRepository, conference_id: str) -> Conference:
    """The conference's state, or ConferenceNotFound."""
    state = await conferences.load(conference_id)
    if not state.exists:
        raise de.ConferenceNotFound(f"no conference {conference_id!r}")
    return state


async def participant_query(conferences: ConferenceRepository, conference_id: str, ref: str) -> dict[str, Any]:
    """One participant's document, by label or CallSid."""
    state = await existing(conferences, conference_id)
    return participant_document(state, cmd.participant(state, ref))


async def conference_of_transfer(read_model: ReadModel, transfer_id: str) -> str:
    """The conference a transfer belongs to, or TransferNotFound."""
    conference_id = await read_model.stream_for_transfer(transfer_id)
    if conference_id is None:
        raise de.TransferNotFound(f"no transfer {transfer_id!r}")
    return conference_id


async def transfer_query(conferences: ConferenceRepository, read_model: ReadModel, transfer_id: str) -> dict[str, Any]:
    """One transfer's document."""
    state = await conferences.load(await conference_of_transfer(read_model, transfer_id))
    transfer = state.transfer(transfer_id)
    if transfer is None:
        raise de.TransferNotFound(f"no transfer {transfer_id!r}")
    return transfer_document(state, transfer)
