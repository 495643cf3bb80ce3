"""The simulator's resources: calls, conferences, participants, recordings, and their settings.

Mutable on purpose: the model is one in-memory world updated in place on the event loop, which keeps
the state machines short. Field names follow Twilio's resource fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from confctl.simulator.model.twiml import Verb

FINAL_CALL_STATUSES = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})

Behavior = Literal["answer", "busy", "no-answer", "failed"]


@dataclass(slots=True)
class CallbackTarget:
    """Where and how a kind of callback is sent, and for which events (empty url: never sent)."""

    url: str | None = None
    method: str = "POST"
    events: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class DirectoryEntry:
    """How a dialed address responds."""

    behavior: Behavior = "answer"
    after_s: float | None = None  # None: the simulator's default ring time (or the Timeout for no-answer)


@dataclass(frozen=True, slots=True)
class ParticipantOptions:
    """A participant's settings as requested (CreateParticipant form or `<Conference>` attributes)."""

    label: str | None = None
    muted: bool = False
    hold: bool = False
    hold_url: str | None = None
    coaching: bool = False
    call_sid_to_coach: str | None = None
    start_conference_on_enter: bool = True
    end_conference_on_exit: bool = False
    beep: str = "true"
    wait_url: str | None = None
    wait_method: str = "POST"  # Twilio's default for a waitUrl that is given (its own music it GETs)


MAX_PARTICIPANTS = 250  # Twilio's conference capacity, and the default maxParticipants / MaxParticipants


@dataclass(frozen=True, slots=True)
class ConferenceSettings:
    """Conference-wide settings each joining leg asks for; those of the first leg to connect win."""

    status_callback: CallbackTarget = field(default_factory=CallbackTarget)
    record_from_start: bool = False
    recording_callback: CallbackTarget = field(default_factory=CallbackTarget)
    max_participants: int = MAX_PARTICIPANTS


@dataclass(frozen=True, slots=True)
class JoinPlan:
    """What an API-dialed participant leg does once answered: enter this conference."""

    conference_sid: str
    options: ParticipantOptions


@dataclass(frozen=True, slots=True)
class FetchPlan:
    """What an API-created call does once answered: fetch TwiML from `url`."""

    url: str
    method: str = "POST"


@dataclass(frozen=True, slots=True)
class TwimlPlan:
    """What an API-created call does once answered: run this TwiML."""

    twiml: str


AnswerPlan = JoinPlan | FetchPlan | TwimlPlan | None


@dataclass(slots=True)
class Call:
    """One call leg."""

    sid: str
    account_sid: str
    from_: str
    to: str
    direction: str  # inbound | outbound-api
    date_created: datetime
    date_updated: datetime
    status: str = "queued"
    parent_call_sid: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    answered_at: float | None = None  # simulated seconds
    ended_at: float | None = None
    timeout_s: float = 60.0
    callback: CallbackTarget = field(default_factory=CallbackTarget)
    sequence: int = 0  # next call-progress SequenceNumber (Twilio starts at 0)
    plan: AnswerPlan = None
    program: tuple[Verb, ...] = ()
    pc: int = 0
    program_id: int = 0  # bumped whenever the program is replaced, so stale timers/fetches are ignored
    conference_sid: str | None = None  # set while the call is a participant (dialing or connected)

    @property
    def ended(self) -> bool:
        return self.status in FINAL_CALL_STATUSES


@dataclass(slots=True)
class Participant:
    """A call's membership in a conference, from dialing until it leaves."""

    call_sid: str
    conference_sid: str
    date_created: datetime
    date_updated: datetime
    options: ParticipantOptions
    status: str = "queued"  # queued | ringing | connected | complete | failed
    muted: bool = False
    hold: bool = False
    hold_url: str | None = None
    coaching: bool = False
    call_sid_to_coach: str | None = None
    end_conference_on_exit: bool = False
    start_conference_on_enter: bool = True
    beep_on_exit: bool = True
    wait_url: str | None = None
    wait_method: str = "POST"
    hold_method: str = "GET"  # UpdateParticipant's HoldMethod defaults to GET (WaitMethod to POST)
    via_api: bool = False  # added with CreateParticipant: the leg hangs up when it leaves
    settings: ConferenceSettings = field(default_factory=ConferenceSettings)  # what this leg asked for

    @property
    def label(self) -> str | None:
        return self.options.label

    @property
    def connected(self) -> bool:
        return self.status == "connected"


@dataclass(slots=True)
class Conference:
    """A conference room; `participants` holds the live legs (dialing and connected) in arrival order."""

    sid: str
    account_sid: str
    friendly_name: str
    date_created: datetime
    date_updated: datetime
    # CreateParticipant: "Only the value set by the first participant to join the conference is used."
    # Joining is connecting: until a leg connects the conference has no settings (so no callback URL),
    # and a leg still ringing binds nothing.
    settings: ConferenceSettings = field(default_factory=ConferenceSettings)
    settings_bound: bool = False
    status: str = "init"  # init | in-progress | completed
    participants: dict[str, Participant] = field(default_factory=dict)
    sequence: int = 0  # last conference SequenceNumber sent (the first callback carries 1)
    reason_conference_ended: str | None = None
    call_sid_ending_conference: str | None = None
    recording_sids: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Recording:
    """A conference recording."""

    sid: str
    account_sid: str
    conference_sid: str
    date_created: datetime
    date_updated: datetime
    start_time: datetime
    started_at: float  # simulated seconds
    callback: CallbackTarget
    status: str = "in-progress"  # in-progress | paused | stopped | processing | completed | absent
    source: str = "Conference"
    pause_behavior: str = "silence"
    recorded_s: float = 0.0  # simulated seconds recorded before the current run
    run_started_at: float | None = None  # when the current in-progress run began
    paused_at: float | None = None
    duration_s: int | None = None
