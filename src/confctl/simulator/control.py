"""The simulator's own control endpoints (`/simulator/…`): drive calls, set the directory and faults,
and read the ground truth that tests compare the service's view against.

Each has an operationId (its function's name: `create_inbound_call`, `hang_up_call`, `put_faults`, …) and a
response model, so `/simulator/openapi.json` gives generated clients sane names and types.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from confctl.simulator.delivery import EARLY_WAIT_S
from confctl.simulator.model.audibility import audibility
from confctl.simulator.model.errors import TwilioApiError
from confctl.simulator.model.records import Call, Conference, DirectoryEntry, Participant
from confctl.simulator.rest.serializers import call_json

if TYPE_CHECKING:
    from confctl.simulator.app import Simulator


class InboundCall(BaseModel):
    """A customer calling the service's number."""

    model_config = ConfigDict(populate_by_name=True, json_schema_extra={"examples": [
        {"from": "+15551230001", "to": "+15559990000"}]})

    from_: str = Field(alias="from")
    to: str


class CallCreated(BaseModel):
    """The inbound call's SID: its conference is `room-{call_sid}` once confctl's TwiML has run."""

    call_sid: str


class CallHungUp(BaseModel):
    """The call after its party hung up."""

    call_sid: str
    status: str


class DirectorySetting(BaseModel):
    """How a dialed address responds."""

    behavior: Literal["answer", "busy", "no-answer", "failed"] = "answer"
    after_s: float | None = Field(default=None, ge=0, description="Ring time (None: the simulator's default).")


class AddressBehavior(DirectorySetting):
    """One directory entry, with its address."""

    address: str


class NotFound(BaseModel):
    """The simulator's 404: no call or conference with that SID or name."""

    detail: str


class SimulatedCall(BaseModel):
    """A call's Twilio REST resource (all of Twilio's fields), its status and the conference it is in."""

    model_config = ConfigDict(extra="allow")

    sid: str
    status: str
    conference_sid: str | None


class ParticipantTruth(BaseModel):
    """A leg as Twilio holds it."""

    call_sid: str
    label: str | None
    status: str
    muted: bool
    hold: bool
    hold_url: str | None
    coaching: bool
    call_sid_to_coach: str | None
    end_conference_on_exit: bool
    start_conference_on_enter: bool


class RecordingTruth(BaseModel):
    sid: str
    status: str


class ConferenceTruth(BaseModel):
    """A conference as Twilio holds it: connected legs in `participants`, legs being dialed in `dialing`."""

    sid: str
    friendly_name: str
    status: str
    reason_conference_ended: str | None
    call_sid_ending_conference: str | None
    participants: list[ParticipantTruth]
    dialing: list[ParticipantTruth]
    recordings: list[RecordingTruth]


class AudibilityTruth(BaseModel):
    """Who hears whom (by label, else CallSid), and who hears hold or wait music."""

    hears: dict[str, list[str]]
    music: list[str]


class RestRequest(BaseModel):
    """One Twilio REST request the simulator received, and the status it answered."""

    model_config = ConfigDict(extra="allow")

    method: str
    path: str
    query: dict[str, list[str]]
    form: dict[str, list[str]]
    operation: str | None = Field(description="The Twilio spec's operationId, e.g. CreateParticipant.")
    status: int | None


class CallbackAttempt(BaseModel):
    """One attempt at a callback or a TwiML/media fetch, and what came back."""

    model_config = ConfigDict(extra="allow")

    kind: str
    method: str
    url: str
    params: dict[str, str]
    status: int | None
    attempt: int


class FaultSettings(BaseModel):
    """The whole fault setting: a field left out goes back to its default (no fault)."""

    rest_error_rate: float = Field(default=0.0, ge=0, le=1,
                                   description="Share of REST requests answered with `rest_error_status` instead.")
    rest_error_status: int = Field(default=500, ge=400, le=599, description="Status of an injected REST error.")
    callback_duplicate_rate: float = Field(
        default=0.0, ge=0, le=1, description="Share of callbacks delivered a second time, the same signed request.")
    callback_drop_rate: float = Field(
        default=0.0, ge=0, le=1, description="Share of callbacks never delivered (no attempt, no retry).")
    callback_reorder: bool = Field(default=False, description="Callbacks waiting in the queue leave in random order.")
    callback_delay_ms: float = Field(default=0.0, ge=0, description="A pause before each callback is sent.")
    callback_concurrency: int = Field(
        default=1, ge=1, le=64,
        description="Webhooks in flight at once, each with its own attempts and retries. 1 (the default): one "
                    "after another, in the order they happened; N: a slow or retried callback no longer holds "
                    "back the ones behind it. A call's TwiML fetches stay one at a time.")
    callback_early: bool = Field(
        default=False,
        description="Callbacks are not held back while a REST request is served, and a REST answer waits "
                    f"(at most {EARLY_WAIT_S} s) for the callbacks its request caused: they reach the receiver "
                    "before the answer does. Default false: the REST answer leaves first.")
    seed: int | None = Field(default=None, description="Seed of the faults' random choices (None: unseeded).")


def participant_truth(participant: Participant) -> dict[str, object]:
    return {
        "call_sid": participant.call_sid,
        "label": participant.label,
        "status": participant.status,
        "muted": participant.muted,
        "hold": participant.hold,
        "hold_url": participant.hold_url,
        "coaching": participant.coaching,
        "call_sid_to_coach": participant.call_sid_to_coach,
        "end_conference_on_exit": participant.end_conference_on_exit,
        "start_conference_on_enter": participant.start_conference_on_enter,
    }


def conference_truth(simulator: Simulator, conference: Conference) -> dict[str, object]:
    recordings = [simulator.world.state.recordings[sid] for sid in conference.recording_sids]
    return {
        "sid": conference.sid,
        "friendly_name": conference.friendly_name,
        "status": conference.status,
        "reason_conference_ended": conference.reason_conference_ended,
        "call_sid_ending_conference": conference.call_sid_ending_conference,
        # Connected legs only; legs still being dialed are listed apart.
        "participants": [participant_truth(p) for p in conference.participants.values() if p.connected],
        "dialing": [participant_truth(p) for p in conference.participants.values() if not p.connected],
        "recordings": [{"sid": r.sid, "status": r.status} for r in recordings],
    }


def call_truth(call: Call) -> dict[str, object]:
    return {**call_json(call), "status": call.status, "conference_sid": call.conference_sid}


def build_router(simulator: Simulator) -> APIRouter:
    router = APIRouter(prefix="/simulator", tags=["simulator"])
    world = simulator.world
    runtime = simulator.runtime
    not_found: dict[int | str, dict[str, object]] = {404: {"model": NotFound}}

    def conference_or_404(sid_or_name: str) -> Conference:
        try:
            return world.conference(sid_or_name)
        except TwilioApiError:
            raise HTTPException(404, f"no conference {sid_or_name!r}") from None

    def call_or_404(call_sid: str) -> Call:
        try:
            return world.call(call_sid)
        except TwilioApiError:
            raise HTTPException(404, f"no call {call_sid!r}") from None

    @router.post("/calls", response_model=CallCreated)
    async def create_inbound_call(body: InboundCall) -> dict[str, str]:
        """An inbound call: the simulator fetches the voice URL and executes the TwiML."""
        call = runtime.apply(lambda: world.inbound_call(body.from_, body.to, simulator.voice_url))
        return {"call_sid": call.sid}

    @router.get("/calls/{call_sid}", response_model=SimulatedCall, responses=not_found)
    async def get_call(call_sid: str) -> dict[str, object]:
        """A call's ground truth (its REST resource plus the conference it is in)."""
        return call_truth(call_or_404(call_sid))

    @router.post("/calls/{call_sid}/hangup", response_model=CallHungUp, responses=not_found)
    async def hang_up_call(call_sid: str) -> dict[str, str]:
        """The party on this call hangs up."""
        call = call_or_404(call_sid)
        runtime.apply(lambda: world.hangup(call.sid))
        return {"call_sid": call.sid, "status": call.status}

    @router.put("/directory/{address:path}", response_model=AddressBehavior)
    async def set_directory_entry(address: str, body: DirectorySetting) -> dict[str, object]:
        """How a dialed address responds."""
        world.set_directory(address, DirectoryEntry(body.behavior, body.after_s))
        return {"address": address, "behavior": body.behavior, "after_s": body.after_s}

    @router.get("/directory", response_model=dict[str, DirectorySetting])
    async def get_directory() -> dict[str, dict[str, object]]:
        """Every address given a behaviour, by address."""
        return {
            address: {"behavior": entry.behavior, "after_s": entry.after_s}
            for address, entry in world.state.directory.items()
        }

    @router.get("/conferences/{sid_or_name}", response_model=ConferenceTruth, responses=not_found)
    async def get_conference(sid_or_name: str) -> dict[str, object]:
        """Ground truth: status and live participants."""
        return conference_truth(simulator, conference_or_404(sid_or_name))

    @router.get("/conferences/{sid_or_name}/audibility", response_model=AudibilityTruth, responses=not_found)
    async def get_conference_audibility(sid_or_name: str) -> dict[str, object]:
        """Ground truth: who hears whom, who hears music."""
        return audibility(conference_or_404(sid_or_name)).as_json()

    @router.put("/faults", response_model=FaultSettings)
    async def put_faults(body: FaultSettings) -> dict[str, object]:
        """Replace the fault injection and delivery settings (all off, in-order delivery by default)."""
        faults = simulator.faults
        for name, value in body.model_dump().items():
            setattr(faults, name, value)
        faults.reseed()
        return faults.as_json()

    @router.get("/faults", response_model=FaultSettings)
    async def get_faults() -> dict[str, object]:
        """The fault injection and delivery settings in force."""
        return simulator.faults.as_json()

    @router.get("/requests", response_model=list[RestRequest])
    async def list_requests() -> list[dict[str, object]]:
        """Every REST request received, in order."""
        return list(simulator.requests)

    @router.delete("/requests", status_code=204)
    async def clear_requests() -> None:
        """Forget the REST requests received so far (204, no body)."""
        simulator.requests.clear()

    @router.get("/callbacks", response_model=list[CallbackAttempt])
    async def list_callbacks() -> list[dict[str, object]]:
        """Every callback and voice request sent, in order, with the answer received."""
        return list(runtime.delivery.log)

    return router
