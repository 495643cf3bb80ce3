"""Response and request models of the control API (API.md §3–§4): the OpenAPI the frontend's client is
generated from. Documents from the read model are validated into these on the way out."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from confctl.domain.labels import MAX_LABEL, label_problem
from confctl.entry.problems import CODES

# Versions and positions are PostgreSQL bigints: a bound beyond this reaches no row, and cannot be sent (a 500).
INT64_MAX = 2**63 - 1


# An RFC 3339 time as confctl writes it (`2024-05-01T12:00:00.123456+00:00`); kept a string on the way out, so
# the answers are the stored text, unchanged.
Timestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"})]


class Problem(BaseModel):
    """RFC 9457 problem details. `code` is the stable identifier to branch on; `type` is the URI of a page that
    explains it, `{CONFCTL_PUBLIC_URL}/problems/{code}`."""

    type: str = Field(json_schema_extra={"format": "uri-reference"}, description=(
        "The problem type's page: `{CONFCTL_PUBLIC_URL}/problems/{code}` (GET it for when it happens and what to "
        "do)."), examples=["https://confctl.example.com/problems/conference_not_found"])
    title: str = Field(description="The code in words; the same for every problem of this type.")
    status: int = Field(description="The HTTP status of the answer.")
    detail: str = Field(description="What went wrong this time.")
    code: str = Field(json_schema_extra={"enum": list(CODES)}, examples=["conference_not_found"])
    twilio_code: int | None = Field(None, description=(
        "Twilio refusals only (`twilio_error`, `coach_target_on_hold`): Twilio's error code, e.g. 16027."))
    twilio_status: int | None = Field(None, description="Twilio refusals only: the HTTP status Twilio answered.")


class Customer(BaseModel):
    """The inbound caller."""

    model_config = ConfigDict(populate_by_name=True)
    call_sid: str
    from_: str = Field(alias="from", serialization_alias="from")
    to: str


class Participant(BaseModel):
    """One leg of a conference."""

    label: str = Field(examples=["agent-alice"])
    call_sid: str | None
    role: Literal["customer", "agent", "supervisor", "external"]
    status: Literal["dialing", "ringing", "joined", "left", "failed"]
    muted: bool
    hold: bool
    coaching: bool
    coach: str | None = Field(description="Label of the agent this supervisor coaches.")
    mode: Literal["normal", "monitor", "coach", "barge"]
    joined_at: Timestamp | None
    left_at: Timestamp | None
    leave_reason: str | None


class Transfer(BaseModel):
    """A warm or cold transfer."""

    model_config = ConfigDict(populate_by_name=True)
    id: str
    conference_id: str
    kind: Literal["warm", "cold"]
    state: Literal["dialing", "consulting", "completed", "cancelled", "failed"]
    from_: str = Field(alias="from", serialization_alias="from")
    to: str
    target_label: str
    target_call_sid: str | None
    created_at: Timestamp
    ended_at: Timestamp | None
    failure_reason: str | None
    pending: bool = Field(default=False, description=(
        "Some of the transfer's Twilio steps (hold, unhold, kick, dial) are not done yet: Twilio could not be "
        "reached and they are being retried (see the conference's `pending_effects`). Only on reads."))


class PendingEffect(BaseModel):
    """A Twilio request that the stored state calls for and that is not done yet (it is being retried)."""

    kind: str = Field(description="dial, update_participant, kick, hang_up, end_conference or update_recording",
                      examples=["update"])
    label: str | None = Field(description="The participant it acts on", examples=["customer"])
    transfer_id: str | None
    attempts: int = Field(description="Failed attempts so far")
    last_error: str | None
    next_attempt_at: Timestamp | None


class Recording(BaseModel):
    """The conference recording."""

    sid: str
    status: Literal["in-progress", "paused", "stopped", "processing", "completed", "absent"] | str
    url: str | None


class Conference(BaseModel):
    """A conference and everything in it: the projection of its event stream."""

    id: str = Field(examples=["room-CA0123456789abcdef0123456789abcdef"])
    twilio_sid: str | None
    status: Literal["init", "in-progress", "completed"]
    created_at: Timestamp | None
    started_at: Timestamp | None
    ended_at: Timestamp | None
    end_reason: str | None
    customer: Customer | None
    participants: list[Participant]
    transfers: list[Transfer]
    recording: Recording | None
    version: int
    pending_effects: list[PendingEffect] = Field(default_factory=list, description=(
        "Twilio requests the stored state calls for that are not done yet (Twilio unreachable: retried with "
        "backoff). Empty in the normal case."))


class ConferencePage(BaseModel):
    """A page of conferences, newest first."""

    items: list[Conference]
    next_cursor: str | None


class Event(BaseModel):
    """One stored event of a conference's history."""

    position: int = Field(description="Global position across all conferences.")
    version: int = Field(description="Version of the conference after this event.")
    type: str = Field(examples=["participant.joined"])
    at: Timestamp
    actor: str | None = Field(description="API key name for commands, `twilio` for callbacks.")
    data: dict[str, Any]


class EventPage(BaseModel):
    """A page of a conference's history, oldest first."""

    items: list[Event]
    next_after: int | None


class Audibility(BaseModel):
    """Who hears whom: right now, or at the version or time asked for."""

    hears: dict[str, list[str]] = Field(examples=[{"customer": ["agent"], "agent": ["customer"]}])
    music: list[str]


class TimelineInterval(BaseModel):
    """One stretch of one kind in a participant's history, placed on the conference's log."""

    model_config = ConfigDict(populate_by_name=True)
    kind: Literal["ringing", "joined", "hold", "muted", "coaching", "monitor", "barge"]
    from_: Timestamp = Field(alias="from", serialization_alias="from",
                             description="When the event that started it was stored.")
    to: Timestamp | None = Field(description="When the event that ended it was stored; null while it lasts.")
    from_version: int = Field(description="The conference version whose state first shows it.")
    to_version: int | None = Field(description="The first version whose state no longer shows it; null while open.")
    actor: str | None = Field(description="Who caused its start: the API key name for commands, `twilio` for "
                                          "callbacks (the event's actor).", examples=["admin"])
    ended_by: str | None = Field(description="Who caused its end (the actor of `to_version`); null while open.")
    with_: str | None = Field(None, alias="with", serialization_alias="with", description=(
        "`coaching` only: the label of the participant coached."), examples=["agent-bob"])


class TimelineParticipant(BaseModel):
    """One leg and its intervals, in the order they started."""

    label: str = Field(examples=["agent-alice"])
    role: Literal["customer", "agent", "supervisor", "external"]
    call_sid: str | None
    intervals: list[TimelineInterval]


class Timeline(BaseModel):
    """A conference's history per participant, folded from its whole log (as of `version`)."""

    conference_id: str
    version: int = Field(description="The conference version the timeline was folded up to.")
    participants: list[TimelineParticipant]


class Health(BaseModel):
    """Liveness or readiness."""

    status: Literal["ok", "unavailable"]
    detail: str | None = None


# Request bodies are taken as documented: no coercion (0.0 is not false, "5" is not 5), no unknown fields.
REQUEST = ConfigDict(extra="forbid", strict=True)


def _integral(value: object) -> object:
    """JSON Schema's integer: 127.0 is one (a number with no fraction), which strict mode alone would refuse."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


# The bounds inside, where the JSON schema shows them as minimum and maximum.
RingSeconds = Annotated[int, Field(ge=5, le=600), BeforeValidator(_integral)]

# What domain/addresses.py accepts, stated in the OpenAPI document (the domain still checks): with ASCII digits
# only and no trailing newline, where Python's \d and $ would let "+1٥٥٥…" or "+15551234567\n" through.
ADDRESS_PATTERN = (r"^(\+[1-9][0-9]{6,14}|client:[A-Za-z0-9_.\-]{1,121}"
                   r"|sip:[A-Za-z0-9_.!~*'()&=+$,;?/%\-]+@[A-Za-z0-9.\-]+(:[0-9]{1,5})?(;[A-Za-z0-9=_.\-]+)*)$")
Address = Annotated[str, Field(
    description="E.164 number (+15551234567), client:NAME or sip:USER@HOST.",
    examples=["+15551234567", "client:alice"], min_length=1, max_length=256, pattern=ADDRESS_PATTERN)]


def _twilio_label(value: str) -> str:
    """A label Twilio would take (domain/labels.py): its CallSid rule is beyond what a JSON Schema pattern here can
    say (pydantic's regex engine has no look-ahead), so it is checked after the pattern."""
    problem = label_problem(value)
    if problem is not None:
        raise ValueError(f"label {problem}")
    return value


# Letters, digits, space and `_ . : @ + -` only: so no `/` nor `%2F` (Twilio's 16024), nor NUL.
LABEL_PATTERN = r"^[A-Za-z0-9_.:@+\- ]+$"
Label = Annotated[str, Field(
    min_length=1, max_length=MAX_LABEL, pattern=LABEL_PATTERN, examples=["agent-bob"],
    description=(f"A new participant's label, unique among the live legs: at most {MAX_LABEL} characters of "
                 "letters, digits, space and `_ . : @ + -` (so never `/`), and not shaped like a CallSid (`CA` "
                 "and 32 hexadecimal digits, in any case), as Twilio requires; anything else is 422 invalid_label.")),
    AfterValidator(_twilio_label)]
# A participant named by its label (or its CallSid, which is why the CallSid rule does not apply).
LabelRef = Annotated[str, Field(min_length=1, max_length=MAX_LABEL, pattern=LABEL_PATTERN, examples=["agent-bob"])]


class AddParticipantRequest(BaseModel):
    """Dial an agent, an external party or a supervisor into the conference."""

    model_config = REQUEST
    to: Address
    role: Literal["agent", "supervisor", "external"]
    label: Label | None = None
    mode: Literal["monitor", "coach", "barge"] | None = Field(
        None, description="Supervisors only (default monitor).")
    coach: LabelRef | None = Field(None, description="Supervisors in mode coach: the label of the agent to coach.")
    timeout_s: RingSeconds | None = Field(None, description="How long to ring before giving up.")


class ChangeParticipantRequest(BaseModel):
    """Hold (music, heard by nobody) and mute (silenced, still hears) are different; modes are for supervisors."""

    model_config = REQUEST
    hold: bool | None = None
    muted: bool | None = None
    # No NUL: PostgreSQL text and jsonb cannot hold one (the command is stored before Twilio is called).
    hold_music_url: str | None = Field(None, max_length=2048, pattern=r"^https?://[^\x00]*$")
    mode: Literal["monitor", "coach", "barge"] | None = None
    coach: LabelRef | None = None


class StartTransferRequest(BaseModel):
    """Start a warm or cold transfer of the customer from one agent to a target."""

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)
    kind: Literal["warm", "cold"]
    from_: LabelRef = Field(alias="from", description="Label of the agent handing the customer over.")
    to: Address
    label: Label | None = None
    target_role: Literal["agent", "external"] = "agent"
    timeout_s: RingSeconds | None = None
    fallback_to: Address | None = Field(None, description="Cold only: dialed if the target fails.")


class RecordingRequest(BaseModel):
    """Pause, resume or stop the conference recording."""

    model_config = REQUEST
    action: Literal["pause", "resume", "stop"]
    pause_behavior: Literal["silence", "skip"] | None = None


class Accepted(BaseModel):
    """The command was accepted; Twilio's callbacks will tell the rest (watch the events)."""

    status: Literal["accepted"] = "accepted"
    conference_id: str


class AnnouncementRequest(BaseModel):
    """Play audio to one joined participant (`to`), or to everyone in the conference when `to` is left out."""

    model_config = REQUEST
    url: str = Field(max_length=2048, pattern=r"^https?://[^\s\x00]+$", description=(
        "An MP3 or WAV file, or a TwiML document of <Play>, <Say>, <Pause> and <Redirect> only; Twilio fetches it "
        "with GET. `announcement.played` follows when it has played, `announcement.failed` when Twilio reports a "
        "failure."), examples=["https://media.example.com/this-call-is-recorded.mp3"])
    to: LabelRef | None = Field(None, description="The label (or CallSid) of a joined participant; none: everyone.")


class AnnouncementAccepted(BaseModel):
    """Twilio took the announcement; its end is on the event stream (`announcement.played` / `.failed`)."""

    status: Literal["accepted"] = "accepted"
    conference_id: str
    url: str
    to: str | None = Field(description="The participant's label, or null for the whole conference.")


class SyncResult(BaseModel):
    """The conference after re-reading Twilio, and what was corrected."""

    conference: Conference
    corrections: list[str]

