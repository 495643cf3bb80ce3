"""Response and request models of the control API (API.md §3–§4): the OpenAPI the frontend's client is
generated from. Documents from the read model are validated into these on the way out."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Problem(BaseModel):
    """RFC 9457 problem details; `code` is one of API.md §5."""

    type: str
    title: str
    status: int
    detail: str
    code: str = Field(examples=["conference_not_found"])


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
    joined_at: str | None
    left_at: str | None
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
    created_at: str
    ended_at: str | None
    failure_reason: str | None


class Recording(BaseModel):
    """The conference recording."""

    sid: str
    status: Literal["in-progress", "paused", "stopped", "completed", "absent"] | str
    url: str | None


class Conference(BaseModel):
    """A conference and everything in it: the projection of its event stream."""

    id: str = Field(examples=["room-CA0123456789abcdef0123456789abcdef"])
    twilio_sid: str | None
    status: Literal["init", "in-progress", "completed"]
    created_at: str | None
    started_at: str | None
    ended_at: str | None
    end_reason: str | None
    customer: Customer | None
    participants: list[Participant]
    transfers: list[Transfer]
    recording: Recording | None
    version: int


class ConferencePage(BaseModel):
    """A page of conferences, newest first."""

    items: list[Conference]
    next_cursor: str | None


class Event(BaseModel):
    """One stored event of a conference's history."""

    position: int = Field(description="Global position across all conferences.")
    version: int = Field(description="Version of the conference after this event.")
    type: str = Field(examples=["participant.joined"])
    at: str
    actor: str | None = Field(description="API key name for commands, `twilio` for callbacks.")
    data: dict[str, Any]


class EventPage(BaseModel):
    """A page of a conference's history, oldest first."""

    items: list[Event]
    next_after: int | None


class Audibility(BaseModel):
    """Who hears whom right now."""

    hears: dict[str, list[str]] = Field(examples=[{"customer": ["agent"], "agent": ["customer"]}])
    music: list[str]


class Health(BaseModel):
    """Liveness or readiness."""

    status: Literal["ok", "unavailable"]
    detail: str | None = None


Address = Annotated[str, Field(
    description="E.164 number (+15551234567), client:NAME or sip:USER@HOST.",
    examples=["+15551234567", "client:alice"], min_length=1, max_length=256)]
Label = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:@+\- ]+$",
                             examples=["agent-bob"])]


class AddParticipantRequest(BaseModel):
    """Dial an agent, an external party or a supervisor into the conference."""

    model_config = ConfigDict(extra="forbid")
    to: Address
    role: Literal["agent", "supervisor", "external"]
    label: Label | None = None
    mode: Literal["monitor", "coach", "barge"] | None = Field(
        None, description="Supervisors only (default monitor).")
    coach: Label | None = Field(None, description="Supervisors in mode coach: the label of the agent to coach.")
    timeout_s: int | None = Field(None, ge=5, le=600, description="How long to ring before giving up.")


class ChangeParticipantRequest(BaseModel):
    """Hold (music, heard by nobody) and mute (silenced, still hears) are different; modes are for supervisors."""

    model_config = ConfigDict(extra="forbid")
    hold: bool | None = None
    muted: bool | None = None
    hold_music_url: str | None = Field(None, max_length=2048, pattern=r"^https?://")
    mode: Literal["monitor", "coach", "barge"] | None = None
    coach: Label | None = None


class StartTransferRequest(BaseModel):
    """Start a warm or cold transfer of the customer from one agent to a target."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    kind: Literal["warm", "cold"]
    from_: Label = Field(alias="from", description="Label of the agent handing the customer over.")
    to: Address
    label: Label | None = None
    target_role: Literal["agent", "external"] = "agent"
    timeout_s: int | None = Field(None, ge=5, le=600)
    fallback_to: Address | None = Field(None, description="Cold only: dialed if the target fails.")


class RecordingRequest(BaseModel):
    """Pause, resume or stop the conference recording."""

    model_config = ConfigDict(extra="forbid")
    action: Literal["pause", "resume", "stop"]
    pause_behavior: Literal["silence", "skip"] | None = None


class Accepted(BaseModel):
    """The command was accepted; Twilio's callbacks will tell the rest (watch the events)."""

    status: Literal["accepted"] = "accepted"
    conference_id: str


class SyncResult(BaseModel):
    """The conference after re-reading Twilio, and what was corrected."""

    conference: Conference
    corrections: list[str]
