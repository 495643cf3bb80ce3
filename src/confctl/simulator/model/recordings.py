"""Conference recordings: record-from-start, pause/resume/stop through the API, completion at the end.

A stopped recording reads `stopped`, then `processing` while Twilio makes the file, then `completed`
(the resource's statuses: in-progress, paused, stopped, processing, completed, absent). The recording
status callback only ever reports the conference-recording events Twilio documents: `in-progress` when
the recording starts, `completed` when the file is ready (`absent` and `failed` are never simulated);
default `completed`. Pause, resume, stop and processing send nothing, being no such event.
"""

from __future__ import annotations

from confctl.simulator.model.clock import rfc2822
from confctl.simulator.model.effects import Callback, StartTimer
from confctl.simulator.model.errors import bad_request, not_found
from confctl.simulator.model.records import Conference, Recording
from confctl.simulator.model.sids import new_sid
from confctl.simulator.model.state import API_VERSION, State

CURRENT = "Twilio.CURRENT"
_ACTIVE = frozenset({"in-progress", "paused"})
# `<Conference recordingStatusCallbackEvent>`: in-progress, completed, absent; CreateParticipant's
# ConferenceRecordingStatusCallbackEvent adds failed. Other subscribed words never fire.
_CALLBACK_EVENTS = frozenset({"in-progress", "completed", "absent", "failed"})
# How long a stopped recording waits before processing, and how long processing takes: Twilio gives no
# figure; a few simulated seconds let a reader see both statuses.
_STOPPED_S = 1.0
_PROCESSING_S = 2.0


def start(state: State, conference: Conference) -> Recording:
    now = state.now()
    at = state.elapsed()
    recording = Recording(
        sid=new_sid("RE", state.rng),
        account_sid=conference.account_sid,
        conference_sid=conference.sid,
        date_created=now,
        date_updated=now,
        start_time=now,
        started_at=at,
        run_started_at=at,
        callback=conference.settings.recording_callback,
    )
    state.recordings[recording.sid] = recording
    conference.recording_sids.append(recording.sid)
    _callback(state, recording)
    return recording


def find(state: State, conference: Conference, sid: str) -> Recording:
    """A recording of this conference by SID, or the active one for `Twilio.CURRENT`."""
    for recording_sid in reversed(conference.recording_sids):
        recording = state.recordings[recording_sid]
        if recording.sid == sid or (sid == CURRENT and recording.status in _ACTIVE):
            return recording
    raise not_found(f"/Conferences/{conference.sid}/Recordings/{sid}.json")


def update(state: State, recording: Recording, status: str, pause_behavior: str | None) -> Recording:
    """Apply UpdateConferenceRecording `Status`: `paused`, `in-progress` (resume) or `stopped`."""
    if status not in ("paused", "in-progress", "stopped"):
        raise bad_request(20001, f"Invalid Status {status!r}: use paused, in-progress or stopped")
    if recording.status not in _ACTIVE:
        raise bad_request(21220, f"Recording {recording.sid} is {recording.status}: it cannot be updated")
    if status == recording.status:
        return recording
    at = state.elapsed()
    if status == "paused":
        recording.pause_behavior = pause_behavior or "silence"
        _close_run(recording, at)
        recording.paused_at = at
    elif recording.status == "paused":  # resume, or stop while paused
        if recording.pause_behavior == "silence" and recording.paused_at is not None:
            recording.recorded_s += at - recording.paused_at  # the silence is part of the file
        recording.paused_at = None
        recording.run_started_at = at if status == "in-progress" else None
    if status == "stopped":
        _close_run(recording, at)
    recording.status = status
    recording.date_updated = state.now()
    if status == "stopped":
        _process(state, recording)
    return recording


def finish_all(state: State, conference: Conference) -> None:
    """The conference ended: every active recording stops and is processed."""
    for sid in conference.recording_sids:
        recording = state.recordings[sid]
        if recording.status in _ACTIVE:
            update(state, recording, "stopped", None)


def _close_run(recording: Recording, at: float) -> None:
    if recording.run_started_at is not None:
        recording.recorded_s += at - recording.run_started_at
        recording.run_started_at = None
    if recording.paused_at is not None and recording.pause_behavior == "silence":
        recording.recorded_s += at - recording.paused_at
        recording.paused_at = None


def _process(state: State, recording: Recording) -> None:
    """stopped → processing → completed, each after a while; the one key means one step pending at a time."""
    recording.duration_s = round(recording.recorded_s)
    key = f"{recording.sid}:processing"

    def complete() -> None:
        recording.status = "completed"
        recording.date_updated = state.now()
        _callback(state, recording)

    def processing() -> None:
        recording.status = "processing"
        recording.date_updated = state.now()
        state.emit(StartTimer(key, _PROCESSING_S, complete))

    state.emit(StartTimer(key, _STOPPED_S, processing))


def media_url(recording: Recording) -> str:
    return f"https://api.twilio.com/{API_VERSION}/Accounts/{recording.account_sid}/Recordings/{recording.sid}"


def _callback(state: State, recording: Recording) -> None:
    target = recording.callback
    if not target.url or recording.status not in target.events or recording.status not in _CALLBACK_EVENTS:
        return
    duration = recording.duration_s if recording.duration_s is not None else 0
    params = (
        ("AccountSid", recording.account_sid),
        ("ConferenceSid", recording.conference_sid),
        ("RecordingSid", recording.sid),
        ("RecordingUrl", media_url(recording)),
        ("RecordingStatus", recording.status),
        ("RecordingDuration", str(duration)),
        ("RecordingChannels", "1"),
        ("RecordingStartTime", rfc2822(recording.start_time)),
        ("RecordingSource", recording.source),
    )
    state.emit(Callback("recording-status", target.url, target.method, params))
