"""The model's front door: every operation the REST API, the control endpoints and the runtime perform.

Each method mutates the state synchronously and leaves effects (callbacks, fetches, timers) in the
outbox; the runtime drains them with `drain()` right after.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from confctl.simulator.model import announcements, conferences, legs, media, participants, program, recordings
from confctl.simulator.model.clock import Clock
from confctl.simulator.model.effects import Effect, Fetch
from confctl.simulator.model.errors import TwilioApiError, bad_request, not_found
from confctl.simulator.model.records import (
    Call,
    CallbackTarget,
    Conference,
    ConferenceSettings,
    DirectoryEntry,
    FetchPlan,
    JoinPlan,
    Participant,
    ParticipantOptions,
    Recording,
    TwimlPlan,
)
from confctl.simulator.model.sids import is_sid, new_sid
from confctl.simulator.model.state import State


@dataclass(frozen=True, slots=True)
class CallRequest:
    """CreateCall, as the model needs it."""

    to: str
    from_: str
    plan: FetchPlan | TwimlPlan
    callback: CallbackTarget
    timeout_s: float = 60.0


@dataclass(frozen=True, slots=True)
class ParticipantRequest:
    """CreateParticipant, as the model needs it."""

    to: str
    from_: str
    options: ParticipantOptions
    settings: ConferenceSettings
    callback: CallbackTarget
    timeout_s: float = 60.0


class World:
    """All calls, conferences and recordings of the simulated account."""

    def __init__(self, account_sid: str, clock: Clock, rng: random.Random, default_ring_s: float) -> None:
        self.state = State(account_sid=account_sid, clock=clock, rng=rng, default_ring_s=default_ring_s)

    def drain(self) -> list[Effect]:
        effects, self.state.outbox = self.state.outbox, []
        return effects

    # --- control side -------------------------------------------------------------------------------

    def set_directory(self, address: str, entry: DirectoryEntry) -> None:
        self.state.directory[address] = entry

    def inbound_call(self, from_: str, to: str, voice_url: str) -> Call:
        """A call reaches our number: it rings while Twilio fetches the voice URL."""
        call = self._new_call(from_, to, "inbound")
        call.status = "ringing"
        legs.fetch(self.state, call, voice_url, "POST")
        return call

    def hangup(self, call_sid: str) -> Call:
        """The party on this leg hangs up."""
        call = self.call(call_sid)
        legs.hang_up(self.state, call, reason="participant_hung_up", kicked=False, unanswered_status="canceled")
        return call

    def twiml_fetched(self, call_sid: str, program_id: int, status_code: int | None, body: str) -> None:
        """The answer to a voice request; a failed fetch ends the call as Twilio's application error does."""
        call = self.state.calls.get(call_sid)
        if call is None or call.ended or call.program_id != program_id:
            return
        if status_code is None or not 200 <= status_code < 300:
            body = "<Response><Hangup/></Response>" if call.answered_at is not None else "not twiml"
        program.load(self.state, call, body)

    def media_fetched(self, fetch: Fetch, status_code: int | None, body: str, content_type: str) -> None:
        """The answer to a wait, hold or announcement fetch (`media.py`).

        A failed waitUrl: "If the request to your waitUrl fails, the Conference will not be fully
        established. To avoid the call being disconnected, you can either add additional TwiML after the
        initial <Dial> <Conference>, or [...] the action callback" (the `<Conference>` page). So the leg
        leaves the conference it was waiting in (its join was already reported: the page does not say it is
        not, the less convenient reading), with ReasonParticipantLeft `participant_add_failed`; a TwiML leg
        goes on with the verbs after its `<Dial>` (none: it is disconnected), an API leg is disconnected. The
        leave's ParticipantCallStatus is the call's then: in-progress for a TwiML leg, completed for an API
        one. A failed holdUrl has no documented consequence: the leg stays on hold (the error is an alert).
        """
        pending = self.state.media.pop(fetch.program_id, None)
        if pending is None:
            return
        outcome = media.outcome(status_code, body, content_type)
        if pending.kind == "announce":
            announcements.fetched(self.state, pending, outcome)
            return
        if outcome.playable:
            return
        self.state.alert(outcome.error_code or media.HTTP_RETRIEVAL_FAILURE, fetch.call_sid,
                         f"{pending.kind}Url {pending.url}: {outcome.reason}")
        conference = self.state.conferences.get(pending.conference_sid)
        participant = conference.participants.get(fetch.call_sid) if conference is not None else None
        if pending.kind != "wait" or conference is None or participant is None or not participant.connected:
            return
        call = self.state.calls[participant.call_sid]
        others = conferences.remove(self.state, conference, participant, reason="participant_add_failed",
                                    call_status="completed" if participant.via_api else "in-progress", kicked=False)
        legs.left_conference(self.state, call, participant)
        legs.end_legs(self.state, others)

    def conference(self, sid_or_name: str) -> Conference:
        """By SID, or the newest conference with that FriendlyName."""
        found = self.state.conferences.get(sid_or_name) or self.state.newest_conference_named(sid_or_name)
        if found is None:
            raise not_found(f"/Conferences/{sid_or_name}.json")
        return found

    # --- Calls ---------------------------------------------------------------------------------------

    def call(self, sid: str) -> Call:
        found = self.state.calls.get(sid)
        if found is None:
            raise not_found(f"/Calls/{sid}.json")
        return found

    def calls(self) -> list[Call]:
        return list(reversed(self.state.calls.values()))  # newest first, as Twilio lists them

    def create_call(self, request: CallRequest) -> Call:
        call = self._new_call(request.from_, request.to, "outbound-api")
        call.callback = request.callback
        call.timeout_s = request.timeout_s
        call.plan = request.plan
        legs.dial(self.state, call)
        return call

    def update_call(self, sid: str, status: str | None, plan: FetchPlan | TwimlPlan | None) -> Call:
        call = self.call(sid)
        if call.ended:
            raise bad_request(21220, "Call is not in-progress. Cannot redirect.")
        if status not in (None, "completed", "canceled"):
            raise bad_request(20001, f"Invalid Status {status!r}")
        # Twilio: `canceled` hangs up queued or ringing calls and leaves answered ones alone;
        # `completed` hangs up the call whatever its state.
        if status == "completed" or (status == "canceled" and call.answered_at is None):
            legs.hang_up(
                self.state, call, reason="participant_updated_via_api", kicked=True, unanswered_status="canceled"
            )
        elif status is None and plan is not None:
            self._redirect(call, plan)
        return call

    def _redirect(self, call: Call, plan: FetchPlan | TwimlPlan) -> None:
        if call.answered_at is None:
            call.plan = plan  # used when the leg answers
            return
        if call.conference_sid is not None:
            conference = self.state.conferences[call.conference_sid]
            participant = conference.participants[call.sid]
            others = conferences.remove(
                self.state,
                conference,
                participant,
                reason="participant_updated_via_api",
                call_status="in-progress",
                kicked=True,
            )
            call.conference_sid = None
            legs.end_legs(self.state, others)
        if isinstance(plan, FetchPlan):
            call.program = ()
            legs.fetch(self.state, call, plan.url, plan.method)
        else:
            program.load(self.state, call, plan.twiml)

    def _new_call(self, from_: str, to: str, direction: str) -> Call:
        now = self.state.now()
        call = Call(
            sid=new_sid("CA", self.state.rng),
            account_sid=self.state.account_sid,
            from_=from_,
            to=to,
            direction=direction,
            date_created=now,
            date_updated=now,
        )
        self.state.calls[call.sid] = call
        return call

    # --- Conferences ---------------------------------------------------------------------------------

    def conference_by_sid(self, sid: str) -> Conference:
        found = self.state.conferences.get(sid)
        if found is None:
            raise not_found(f"/Conferences/{sid}.json")
        return found

    def conferences(self) -> list[Conference]:
        return list(reversed(self.state.conferences.values()))

    def end_conference(self, sid: str, status: str | None) -> Conference:
        conference = self.conference_by_sid(sid)
        if status is not None and status != "completed":
            raise bad_request(20001, f"Invalid Status {status!r}: only completed is allowed")
        if status == "completed":
            left = conferences.end(
                self.state,
                conference,
                "conference-ended-via-api",
                ending=None,
                leave_reason="conference_ended_via_api",
            )
            legs.end_legs(self.state, left)
        return conference

    def announce_to_conference(self, sid: str, url: str, method: str) -> None:
        """UpdateConference AnnounceUrl: play `url` to everyone in the conference.

        An ended conference refuses it as an ended conference's participants refuse updates (20404); Twilio
        does not document this case.
        """
        conference = self.conference_by_sid(sid)
        if conference.status == "completed":
            raise TwilioApiError(404, 20404, "The conference has ended")
        announcements.to_conference(self.state, conference, url, method)

    # --- Participants --------------------------------------------------------------------------------

    def create_participant(self, conference_sid_or_name: str, request: ParticipantRequest) -> Participant:
        """Dial a leg into a conference; a FriendlyName creates the conference when none is live."""
        if is_sid(conference_sid_or_name, "CF"):
            conference = self.conference_by_sid(conference_sid_or_name)
            if conference.status == "completed":
                raise not_found(f"/Conferences/{conference.sid}.json")
        else:
            found = self.state.live_conference_named(conference_sid_or_name)
            participants.check_new(self.state, found, request.options)  # a refused request creates no room
            conference = found or conferences.create(self.state, conference_sid_or_name)
        options = request.options
        participants.check_new(self.state, conference, options)
        if conferences.is_full(conference):
            # The 16020 page says only "a participant has attempted to join a conference that has reached
            # its maximum participant capacity"; the simulator refuses the request itself (no leg is dialed).
            raise bad_request(16020, f"Conference {conference.sid} is full")
        call = self._new_call(request.from_, request.to, "outbound-api")
        call.callback = request.callback
        call.timeout_s = request.timeout_s
        call.plan = JoinPlan(conference.sid, options)
        call.conference_sid = conference.sid
        now = self.state.now()
        participant = Participant(
            call_sid=call.sid,
            conference_sid=conference.sid,
            date_created=now,
            date_updated=now,
            options=options,
            muted=options.muted,
            hold=options.hold,
            hold_url=options.hold_url,
            coaching=options.coaching,
            call_sid_to_coach=options.call_sid_to_coach if options.coaching else None,
            start_conference_on_enter=options.start_conference_on_enter,
            end_conference_on_exit=options.end_conference_on_exit,
            wait_url=options.wait_url,
            wait_method=options.wait_method,
            via_api=True,
            settings=request.settings,
        )
        conference.participants[call.sid] = participant
        legs.dial(self.state, call)
        return participant

    def participant(self, conference_sid: str, call_sid_or_label: str) -> Participant:
        return participants.find(self.conference_by_sid(conference_sid), call_sid_or_label)

    def update_participant(
        self, conference_sid: str, call_sid_or_label: str, changes: participants.ParticipantChanges
    ) -> Participant:
        conference = self.conference_by_sid(conference_sid)
        participant = participants.find(conference, call_sid_or_label)
        participants.update(self.state, conference, participant, changes)
        return participant

    def delete_participant(self, conference_sid: str, call_sid_or_label: str) -> None:
        participant = self.participant(conference_sid, call_sid_or_label)
        legs.kick(self.state, participant)

    # --- Recordings ----------------------------------------------------------------------------------

    def recordings(self, conference_sid: str) -> list[Recording]:
        conference = self.conference_by_sid(conference_sid)
        return [self.state.recordings[sid] for sid in reversed(conference.recording_sids)]

    def recording(self, conference_sid: str, sid: str) -> Recording:
        return recordings.find(self.state, self.conference_by_sid(conference_sid), sid)

    def update_recording(self, conference_sid: str, sid: str, status: str, pause_behavior: str | None) -> Recording:
        if pause_behavior not in (None, "skip", "silence"):
            raise TwilioApiError(400, 20001, f"Invalid PauseBehavior {pause_behavior!r}")
        recording = self.recording(conference_sid, sid)
        return recordings.update(self.state, recording, status, pause_behavior)
