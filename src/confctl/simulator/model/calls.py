"""Call legs: status transitions and the call-progress status callbacks they fire.

Statuses run queued → initiated → ringing → in-progress → completed, or end early in busy, no-answer,
failed or canceled. `initiated` is only ever seen in callbacks: the REST resource reports `queued` then.
"""

from __future__ import annotations

import math

from confctl.simulator.model.clock import rfc2822
from confctl.simulator.model.effects import Callback, CancelTimer
from confctl.simulator.model.records import Call
from confctl.simulator.model.state import API_VERSION, State

# The StatusCallbackEvent keyword that subscribes to each status.
_EVENT_FOR_STATUS = {"initiated": "initiated", "ringing": "ringing", "in-progress": "answered"}
# Final SIP response per final status (webhooks.md: 487 when the Timeout hit before connect).
_SIP_CODE = {"completed": 200, "busy": 486, "no-answer": 487, "canceled": 487, "failed": 404}


def ring_timer_key(call: Call) -> str:
    """The timer that moves a dialed leg along (initiate, ring outcome, ring timeout)."""
    return f"{call.sid}:ring"


def twiml_timer_key(call: Call) -> str:
    """The timer of the TwiML verb in progress (`<Say>`, `<Play>`, `<Pause>`)."""
    return f"{call.sid}:twiml"


def set_status(state: State, call: Call, status: str) -> None:
    """Move a live call to a non-final status and send the subscribed callback."""
    call.status = status
    call.date_updated = state.now()
    if status == "in-progress":
        call.start_time = call.date_updated
        call.answered_at = state.elapsed()
    _callback(state, call, _EVENT_FOR_STATUS.get(status))


def finish(state: State, call: Call, status: str) -> None:
    """End the call in a final status; the `completed` event fires whatever that status is."""
    if call.ended:
        return
    # Twilio: a call canceled while still queued fires no status callbacks at all.
    silent = status == "canceled" and call.status == "queued"
    call.status = status
    call.date_updated = call.end_time = state.now()
    call.ended_at = state.elapsed()
    call.conference_sid = None
    call.program = ()
    call.program_id += 1  # pending TwiML timers and fetches of this call become stale
    state.emit(CancelTimer(ring_timer_key(call)))
    state.emit(CancelTimer(twiml_timer_key(call)))
    if not silent:
        _callback(state, call, "completed")


def duration_s(call: Call) -> int:
    """Seconds between answer and end (0 if never answered)."""
    if call.answered_at is None or call.ended_at is None:
        return 0
    return max(0, round(call.ended_at - call.answered_at))


def base_params(call: Call) -> list[tuple[str, str]]:
    """The parameters of every request about a call (voice request and status callbacks)."""
    params = [
        ("CallSid", call.sid),
        ("AccountSid", call.account_sid),
        ("From", call.from_),
        ("To", call.to),
        ("CallStatus", call.status),
        ("ApiVersion", API_VERSION),
        ("Direction", call.direction),
    ]
    if call.parent_call_sid:  # absent on the first leg of a call
        params.append(("ParentCallSid", call.parent_call_sid))
    return params


def _callback(state: State, call: Call, event: str | None) -> None:
    target = call.callback
    if event is None or not target.url or event not in target.events:
        return
    params = base_params(call)
    params += [
        ("CallbackSource", "call-progress-events"),
        ("SequenceNumber", str(call.sequence)),
        ("Timestamp", rfc2822(state.now())),
    ]
    call.sequence += 1
    if event == "completed":
        seconds = duration_s(call)
        billed_minutes = math.ceil(seconds / 60) if call.answered_at is not None else 0
        params += [
            ("CallDuration", str(seconds)),
            ("Duration", str(max(billed_minutes, 1) if call.answered_at is not None else 0)),
            ("SipResponseCode", str(_SIP_CODE.get(call.status, 200))),
        ]
    state.emit(Callback("call-status", target.url, target.method, tuple(params)))
