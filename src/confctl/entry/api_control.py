"""The command side of the control API (API.md §3): participants, hold and mute, supervision modes,
transfers, recording, end and sync. Scopes: `control`, and `supervise` for supervisor legs and modes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import JSONResponse

from confctl.domain import announcements as an
from confctl.domain import commands as cmd
from confctl.domain import transfers as tr
from confctl.entry import examples, schemas
from confctl.entry.api_read import storable_ids
from confctl.entry.auth import authenticate, check_scope
from confctl.entry.container import Container
from confctl.entry.errors import ApiProblem
from confctl.entry.idempotency import idempotency_key, idempotent
from confctl.entry.pending import transfer_with_pending
from confctl.entry.settings import ApiKey
from confctl.service.control import ControlService, participant_query, transfer_query

router = APIRouter(prefix="/v1", tags=["control"], dependencies=[Depends(storable_ids)])
Key = Annotated[ApiKey, Depends(authenticate)]
IDEMPOTENT = [Depends(idempotency_key)]  # after the router's: a request without a key is still a 401 first


def _problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    described = {401: "No valid API key", 403: "The API key lacks the scope", 404: "Not found",
                 409: ("Conflicts with the conference's state (conference_ended, participant_not_connected, "
                       "transfer_in_progress, invalid_transition, label_taken, coach_target_not_connected, "
                       "coach_target_on_hold, idempotency_key_in_flight)"),
                 422: ("Invalid request (invalid_request, invalid_address, invalid_label, not_a_supervisor, "
                       "idempotency_key_reused)"),
                 502: "Twilio refused (twilio_error)",
                 503: "Twilio unreachable (twilio_unavailable) or the database is (database_unavailable)"}
    return {c: {"model": schemas.Problem, "description": described[c]} for c in (401, 403, *codes, 503)}


def _control(request: Request) -> ControlService:
    container: Container = request.app.state.container
    if container.control is None:
        raise ApiProblem(503, "twilio_unavailable", "No Twilio gateway is configured")
    return container.control


def _hold_url(request: Request) -> str | None:
    container: Container = request.app.state.container
    return container.settings.hold_music_url


@router.post("/conferences/{conference_id}/participants", status_code=202, operation_id="addParticipant",
             summary="Dial an agent, external party or supervisor into the conference", dependencies=IDEMPOTENT,
             response_model=schemas.Participant, responses=_problems(404, 409, 422, 502, 503))
async def add_participant(request: Request, conference_id: str, key: Key, body: Annotated[
        schemas.AddParticipantRequest, Body(openapi_examples=examples.ADD_PARTICIPANT_EXAMPLES)]) -> JSONResponse:
    """`202` with the new participant (status `dialing`); Twilio's callbacks move it on. Supervisors need the
    `supervise` scope; `mode`/`coach` are for supervisors only. Accepts `Idempotency-Key`."""
    check_scope(key, "supervise" if body.role == "supervisor" else "control")
    command = cmd.AddParticipant(to=body.to, role=body.role, label=body.label, mode=body.mode, coach=body.coach,
                                 timeout_s=body.timeout_s)
    return await idempotent(request, body.model_dump(), 202,
                            lambda: _control(request).add_participant(conference_id, command, key.name))


@router.get("/conferences/{conference_id}/participants/{participant}", operation_id="getParticipant",
            summary="Get one participant by label or CallSid", response_model=schemas.Participant,
            responses=_problems(404))
async def get_participant(request: Request, conference_id: str, participant: str, key: Key) -> dict[str, Any]:
    """The participant, live or past."""
    check_scope(key, "read")
    container: Container = request.app.state.container
    return await participant_query(container.conferences, conference_id, participant)


@router.patch("/conferences/{conference_id}/participants/{participant}", operation_id="changeParticipant",
              summary="Hold, mute, or switch a supervisor's mode", response_model=schemas.Participant,
              responses=_problems(404, 409, 422, 502, 503))
async def change_participant(
    request: Request, conference_id: str, participant: str, key: Key,
    body: Annotated[schemas.ChangeParticipantRequest, Body(openapi_examples=examples.CHANGE_PARTICIPANT_EXAMPLES)],
) -> dict[str, Any]:
    """`hold` plays music to the participant and hides them from everyone; `muted` only silences them.
    `mode` (monitor / coach / barge) switches a supervisor live on the same leg: no redial."""
    check_scope(key, "supervise" if body.mode is not None or body.coach is not None else "control")
    command = cmd.ChangeParticipant(hold=body.hold, muted=body.muted, hold_music_url=body.hold_music_url,
                                    mode=body.mode, coach=body.coach)
    return await _control(request).change_participant(conference_id, participant, command, key.name,
                                                      _hold_url(request))


@router.delete("/conferences/{conference_id}/participants/{participant}", status_code=202,
               operation_id="removeParticipant", summary="That leg leaves the conference",
               response_model=schemas.Accepted, responses=_problems(404, 409, 502, 503))
async def remove_participant(request: Request, conference_id: str, participant: str, key: Key) -> dict[str, Any]:
    """A joined leg is removed (Twilio's participant DELETE); a ringing one is hung up."""
    check_scope(key, "control")
    await _control(request).remove_participant(conference_id, participant, key.name)
    return {"status": "accepted", "conference_id": conference_id}


@router.post("/conferences/{conference_id}/end", status_code=202, operation_id="endConference",
             summary="End the conference: every leg ends", response_model=schemas.Accepted,
             responses=_problems(404, 409, 502, 503))
async def end_conference(request: Request, conference_id: str, key: Key) -> dict[str, Any]:
    """Ends the conference on Twilio and hangs up legs still ringing."""
    check_scope(key, "control")
    await _control(request).end_conference(conference_id, key.name)
    return {"status": "accepted", "conference_id": conference_id}


@router.post("/conferences/{conference_id}/announcements", status_code=202, operation_id="announce",
             summary="Play audio to one participant or to the whole conference", dependencies=IDEMPOTENT,
             response_model=schemas.AnnouncementAccepted, responses=_problems(404, 409, 422, 502, 503))
async def announce(request: Request, conference_id: str, key: Key, body: Annotated[
        schemas.AnnouncementRequest, Body(openapi_examples=examples.ANNOUNCEMENT_EXAMPLES)]) -> JSONResponse:
    """`202` once Twilio has taken it; `announcement.played` (or `announcement.failed`) follows on the event stream
    when it has played, with the URL and, for a participant still in the conference, its label. `to` must be a
    joined participant (`404 participant_not_found`, `409 participant_not_connected`). Accepts `Idempotency-Key`."""
    check_scope(key, "control")
    command = an.MakeAnnouncement(url=body.url, to=body.to)
    return await idempotent(request, body.model_dump(), 202,
                            lambda: _control(request).announce(conference_id, command, key.name))


@router.post("/conferences/{conference_id}/sync", operation_id="syncConference",
             summary="Re-read Twilio and repair drift", response_model=schemas.SyncResult,
             responses=_problems(404, 502, 503))
async def sync_conference(request: Request, conference_id: str, key: Key) -> dict[str, Any]:
    """Compares Twilio's conference and live participants with ours; each difference is stored as an event."""
    check_scope(key, "control")
    return await _control(request).sync(conference_id, key.name)


@router.post("/conferences/{conference_id}/recording", operation_id="controlRecording",
             summary="Pause, resume or stop the recording", response_model=schemas.Recording,
             responses=_problems(404, 409, 422, 502, 503))
async def control_recording(request: Request, conference_id: str, key: Key, body: Annotated[
        schemas.RecordingRequest, Body(openapi_examples=examples.RECORDING_EXAMPLES)]) -> dict[str, Any]:
    """`pause_behavior` (silence / skip) goes with `pause`."""
    check_scope(key, "control")
    return await _control(request).recording(conference_id, body.action, body.pause_behavior, key.name)


@router.post("/conferences/{conference_id}/transfers", status_code=202, operation_id="startTransfer",
             summary="Start a warm or cold transfer", response_model=schemas.Transfer, dependencies=IDEMPOTENT,
             responses=_problems(404, 409, 422, 502, 503))
async def start_transfer(request: Request, conference_id: str, key: Key, body: Annotated[
        schemas.StartTransferRequest, Body(openapi_examples=examples.START_TRANSFER_EXAMPLES)]) -> JSONResponse:
    """Warm: the customer hears music while the agents consult, then `complete` or `cancel`. Cold: `from` leaves
    at once and the customer waits on hold for the target (or `fallback_to`). Accepts `Idempotency-Key`."""
    check_scope(key, "control")
    command = tr.StartTransfer(kind=body.kind, from_label=body.from_, to=body.to, label=body.label,
                               target_role=body.target_role, timeout_s=body.timeout_s, fallback_to=body.fallback_to)
    return await idempotent(request, body.model_dump(by_alias=True), 202, lambda: _control(request).start_transfer(
        conference_id, command, key.name, _hold_url(request)))


@router.get("/transfers/{transfer_id}", operation_id="getTransfer", summary="Get one transfer",
            response_model=schemas.Transfer, responses=_problems(404))
async def get_transfer(request: Request, transfer_id: str, key: Key) -> dict[str, Any]:
    """The transfer and its state; `pending` while some of its Twilio steps are still being retried."""
    check_scope(key, "read")
    container: Container = request.app.state.container
    return await transfer_with_pending(container, await transfer_query(container.conferences,
                                                                       container.read_model, transfer_id))


@router.post("/transfers/{transfer_id}/complete", operation_id="completeTransfer",
             summary="Complete a warm transfer", response_model=schemas.Transfer,
             responses=_problems(404, 409, 502, 503))
async def complete_transfer(request: Request, transfer_id: str, key: Key) -> dict[str, Any]:
    """Consulting only: the customer comes off hold with the target and `from` leaves."""
    check_scope(key, "control")
    return await _control(request).complete_transfer(transfer_id, key.name)


@router.post("/transfers/{transfer_id}/cancel", operation_id="cancelTransfer", summary="Cancel a transfer",
             response_model=schemas.Transfer, responses=_problems(404, 409, 502, 503))
async def cancel_transfer(request: Request, transfer_id: str, key: Key) -> dict[str, Any]:
    """The target leg ends and the customer comes off hold with `from`."""
    check_scope(key, "control")
    return await _control(request).cancel_transfer(transfer_id, key.name)
