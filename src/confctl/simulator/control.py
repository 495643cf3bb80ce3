"""The simulator's own control endpoints (`/simulator/…`): drive calls, set the directory and faults,
and read the ground truth that tests compare the service's view against."""

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
    model_config = ConfigDict(populate_by_name=True)

    from_: str = Field(alias="from")
    to: str


class DirectorySetting(BaseModel):
    behavior: Literal["answer", "busy", "no-answer", "failed"] = "answer"
    after_s: float | None = Field(default=None, ge=0)


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

    @router.post("/calls")
    async def inbound_call(body: InboundCall) -> dict[str, str]:
        """An inbound call: the simulator fetches the voice URL and executes the TwiML."""
        call = runtime.apply(lambda: world.inbound_call(body.from_, body.to, simulator.voice_url))
        return {"call_sid": call.sid}

    @router.get("/calls/{call_sid}")
    async def get_call(call_sid: str) -> dict[str, object]:
        """A call's ground truth (its REST resource plus the conference it is in)."""
        return call_truth(call_or_404(call_sid))

    @router.post("/calls/{call_sid}/hangup")
    async def hangup(call_sid: str) -> dict[str, str]:
        """The party on this call hangs up."""
        call = call_or_404(call_sid)
        runtime.apply(lambda: world.hangup(call.sid))
        return {"call_sid": call.sid, "status": call.status}

    @router.put("/directory/{address:path}")
    async def set_directory(address: str, body: DirectorySetting) -> dict[str, object]:
        """How a dialed address responds."""
        world.set_directory(address, DirectoryEntry(body.behavior, body.after_s))
        return {"address": address, "behavior": body.behavior, "after_s": body.after_s}

    @router.get("/directory")
    async def get_directory() -> dict[str, dict[str, object]]:
        return {
            address: {"behavior": entry.behavior, "after_s": entry.after_s}
            for address, entry in world.state.directory.items()
        }

    @router.get("/conferences/{sid_or_name}")
    async def conference(sid_or_name: str) -> dict[str, object]:
        """Ground truth: status and live participants."""
        return conference_truth(simulator, conference_or_404(sid_or_name))

    @router.get("/conferences/{sid_or_name}/audibility")
    async def conference_audibility(sid_or_name: str) -> dict[str, object]:
        """Ground truth: who hears whom, who hears music."""
        return audibility(conference_or_404(sid_or_name)).as_json()

    @router.put("/faults")
    async def set_faults(body: FaultSettings) -> dict[str, object]:
        """Replace the fault injection and delivery settings (all off, in-order delivery by default)."""
        faults = simulator.faults
        for name, value in body.model_dump().items():
            setattr(faults, name, value)
        faults.reseed()
        return faults.as_json()

    @router.get("/faults")
    async def get_faults() -> dict[str, object]:
        return simulator.faults.as_json()

    @router.get("/requests")
    async def requests() -> list[dict[str, object]]:
        """Every REST request received, in order."""
        return list(simulator.requests)

    @router.delete("/requests", status_code=204)
    async def clear_requests() -> None:
        simulator.requests.clear()

    @router.get("/callbacks")
    async def callbacks() -> list[dict[str, object]]:
        """Every callback and voice request sent, in order, with the answer received."""
        return list(runtime.delivery.log)

    return router
