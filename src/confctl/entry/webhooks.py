"""Twilio → confctl webhooks (API.md §2): signed form POSTs in, TwiML or 204 out."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qsl, quote

import structlog
from fastapi import APIRouter, Depends, Request, Response

from confctl.adapters.twiml import ConferenceTwiml, dial_conference
from confctl.entry import twilio_forms as forms
from confctl.entry.container import Container
from confctl.entry.errors import ApiProblem
from confctl.entry.metrics import count_callback

log = structlog.get_logger(__name__)
router = APIRouter(prefix="/twilio", tags=["twilio webhooks"])


async def signed_form(request: Request) -> dict[str, str]:
    """The form of a request Twilio signed; 403 (nothing stored) when the signature is missing or wrong.

    Twilio posts `application/x-www-form-urlencoded` UTF-8: parsed here directly (a multipart parser per
    callback costs more than everything else on this path).
    """
    container: Container = request.app.state.container
    multi: dict[str, list[str]] = {}
    for key, value in parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True):
        multi.setdefault(key, []).append(value)
    path, query = request.scope["path"], request.scope["query_string"].decode("latin-1")
    if not container.signatures.is_valid(path, query, multi, request.headers.get("x-twilio-signature")):
        log.warning("twilio.signature.rejected", path=path)
        raise ApiProblem(403, "invalid_signature", "X-Twilio-Signature is missing or does not match.")
    return {key: values[0] for key, values in multi.items()}


Form = Annotated[dict[str, str], Depends(signed_form)]
NO_CONTENT = Response(status_code=204)


def _container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


@router.post(
    "/voice",
    operation_id="twilioVoice",
    summary="Voice webhook: put the caller into their conference",
    response_class=Response,
    responses={200: {"content": {"application/xml": {}}, "description": "TwiML"}},
)
async def voice(request: Request, form: Form) -> Response:
    """Answers an inbound call with `<Dial><Conference>` into `room-{CallSid}`."""
    c = _container(request)
    fact = forms.voice(form, c.clock.now(), c.settings.record)
    change = await c.callbacks.inbound_call(fact)
    count_callback("voice", change)
    conference_id = change.state.id
    public = c.settings.public_url
    twiml = dial_conference(
        ConferenceTwiml(
            conference_name=conference_id,
            label="customer",
            status_callback=f"{public}/twilio/conference-status",
            wait_url=c.settings.wait_url,
            record=c.settings.record,
            recording_status_callback=f"{public}/twilio/recording-status?conference_id={quote(conference_id)}",
        )
    )
    return Response(content=twiml, media_type="application/xml")


@router.post("/conference-status", status_code=204, operation_id="twilioConferenceStatus",
             summary="Conference status callback", response_class=Response)
async def conference_status(request: Request, form: Form) -> Response:
    """Stores a conference event (start, end, join, leave, mute, hold, modify)."""
    c = _container(request)
    callback = forms.conference_status(form, c.clock.now())
    if callback.fact is None:
        log.info("twilio.callback.ignored", event=form.get("StatusCallbackEvent"))
        return NO_CONTENT
    count_callback("conference-status", await c.callbacks.conference_event(
        callback.friendly_name, callback.fact, callback.dedupe_key, callback.sequence))
    return NO_CONTENT


@router.post("/call-status", status_code=204, operation_id="twilioCallStatus",
             summary="Call status callback of a leg confctl dialed", response_class=Response)
async def call_status(request: Request, form: Form) -> Response:
    """Stores a call's progress (initiated, ringing, answered, completed, busy, no-answer, failed, canceled)."""
    c = _container(request)
    fact, key = forms.call_status(form, c.clock.now(), request.query_params.get("label"))
    count_callback("call-status", await c.callbacks.call_status(fact, request.query_params.get("conference_id"), key))
    return NO_CONTENT


@router.post("/recording-status", status_code=204, operation_id="twilioRecordingStatus",
             summary="Conference recording status callback", response_class=Response)
async def recording_status(request: Request, form: Form) -> Response:
    """Stores a recording's status (in-progress, completed, absent, …)."""
    c = _container(request)
    fact, key = forms.recording_status(form, c.clock.now())
    count_callback("recording-status", await c.callbacks.recording_status(
        fact, request.query_params.get("conference_id"), form.get("ConferenceSid"), key))
    return NO_CONTENT
