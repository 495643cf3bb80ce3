"""Twilio acted but its answer was lost: the twilio proxy forwards CreateParticipant (Twilio dials) and then
answers 502 instead of Twilio's answer, or never answers (confctl's request times out).

confctl must find out what Twilio did (the participant by its label) before it answers or tries again: one leg
at Twilio, the API's answer agreeing with Twilio, and a retry with the same Idempotency-Key doing nothing more.
"""

from __future__ import annotations

import pytest

from tests.process.exchanges import Action, Rule
from tests.process.stack import ProcessStack, eventually
from tests.process.transfers import (
    CREATE_PARTICIPANT,
    TARGET,
    TARGET_LABEL,
    assert_dialed_once,
    finish_transfer,
    live_call,
    request_transfer,
)

LOST = {"502 after Twilio acted": Rule(Action.LOSE_ANSWER, status=502),
        "no answer (timeout)": Rule(Action.HOLD_RESPONSE)}


def losing(how: str, label: str) -> Rule:
    """The first CreateParticipant for `label` loses its answer as `how` says."""
    model = LOST[how]
    return Rule(model.action, method="POST", path=CREATE_PARTICIPANT, fields={"Label": label}, status=model.status,
                times=1)


@pytest.mark.parametrize("how", list(LOST))
async def test_a_lost_answer_on_a_participant_add_dials_once(stack: ProcessStack, how: str) -> None:
    """The add answers 202 with the CallSid Twilio gave the leg; a retry with the same key is the same answer;
    Twilio received one CreateParticipant and the leg joins."""
    _, room = await live_call(stack)
    stack.twilio.add(losing(how, "carol"))
    body = {"to": "client:carol", "role": "agent", "label": "carol"}
    headers = {"Idempotency-Key": "add-carol-1"}
    first = await stack.api().post(f"/v1/conferences/{room}/participants", json=body, headers=headers)
    assert first.status_code == 202, first.text + await stack.describe(room)
    dials = await stack.dials("carol")
    assert len(dials) == 1 and first.json()["call_sid"], f"{first.json()}" + await stack.describe(room)
    again = await stack.api().post(f"/v1/conferences/{room}/participants", json=body, headers=headers)
    assert again.status_code == 202 and again.json() == first.json(), again.text
    await eventually(lambda: stack.assert_joined(room, "carol"), explain=lambda: stack.describe(room))
    truth = await stack.ground_truth(room)
    carol = next(p for p in truth["participants"] if p["label"] == "carol")
    assert carol["call_sid"] == first.json()["call_sid"]
    await assert_dialed_once(stack, room, "carol")


@pytest.mark.parametrize("kind", ["warm", "cold"])
async def test_a_lost_answer_on_a_transfer_dial_does_not_fail_the_transfer(stack: ProcessStack, kind: str) -> None:
    """The transfer's dial reached Twilio and its answer was lost: the transfer goes on (consulting, then
    completed) instead of failing while the target joins, and the target was dialed once."""
    _, room = await live_call(stack)
    await stack.set_directory(TARGET, after_s=0.5)
    stack.twilio.add(losing("502 after Twilio acted", TARGET_LABEL))
    accepted = await request_transfer(stack, room, kind)
    assert accepted.status_code == 202, accepted.text + await stack.describe(room)
    await finish_transfer(stack, room, kind)
