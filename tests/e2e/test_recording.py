"""Conference recording from the start, then pause, resume and stop through the control API."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.e2e.support import Stack, build_stack
from tests.e2e.test_hold_mute_supervision import live_call


@pytest.fixture
async def recording_stack(engine: AsyncEngine) -> AsyncIterator[Stack]:
    """The stack with CONFCTL_RECORD=true."""
    async with build_stack(engine, record=True) as s:
        yield s


async def test_recording_pause_resume_stop(recording_stack: Stack) -> None:
    """A recorded call's recording pauses (with pause_behavior), resumes and stops; each state is Twilio's."""
    stack = recording_stack
    room, _ = await live_call(stack)
    conference = (await stack.api.get(f"/v1/conferences/{room}")).json()
    assert conference["recording"]["status"] == "in-progress", conference["recording"]
    sid = conference["recording"]["sid"]

    paused = await stack.api.post(f"/v1/conferences/{room}/recording",
                                  json={"action": "pause", "pause_behavior": "silence"})
    assert paused.status_code == 200, paused.text
    assert paused.json() == {"sid": sid, "status": "paused", "url": conference["recording"]["url"]}
    update = [r for r in await stack.rest_requests() if r["operation"] == "UpdateConferenceRecording"][-1]
    assert update["form"] == {"Status": ["paused"], "PauseBehavior": ["silence"]}
    await stack.settle()

    resumed = await stack.api.post(f"/v1/conferences/{room}/recording", json={"action": "resume"})
    assert resumed.status_code == 200 and resumed.json()["status"] == "in-progress"
    await stack.settle()
    stopped = await stack.api.post(f"/v1/conferences/{room}/recording", json={"action": "stop"})
    assert stopped.status_code == 200 and stopped.json()["status"] == "stopped"
    await stack.settle()
    final = (await stack.api.get(f"/v1/conferences/{room}")).json()["recording"]
    assert final["status"] in ("stopped", "completed")
    again = await stack.api.post(f"/v1/conferences/{room}/recording", json={"action": "pause"})
    assert again.status_code == 409 and again.json()["code"] == "invalid_transition"


async def test_recording_actions_need_a_recording(stack: Stack) -> None:
    """Without a recording, pause is 409 invalid_transition; a bad action or pause_behavior is 422."""
    room, _ = await live_call(stack)
    response = await stack.api.post(f"/v1/conferences/{room}/recording", json={"action": "pause"})
    assert response.status_code == 409 and response.json()["code"] == "invalid_transition"
    for body in ({"action": "rewind"}, {"action": "stop", "pause_behavior": "skip"}):
        response = await stack.api.post(f"/v1/conferences/{room}/recording", json=body)
        assert response.status_code == 422, body
