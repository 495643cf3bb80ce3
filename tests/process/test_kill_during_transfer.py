"""kill -9 of `confctl serve` at each step of a warm and a cold transfer, then a restart on the same port.

The kill points: after the transfer is stored and before any of its Twilio requests; before its dial reaches
Twilio (the twilio proxy holds the request); after Twilio acted on the dial and before its answer is stored (the
proxy withholds the answer); during the consult; while a cold transfer's target rings; after `complete`'s unhold
and before its kick. After the restart the transfer must reach the state the simulator's ground truth implies,
nobody may stay on hold, confctl must hear the call as the simulator does, and Twilio must have received exactly
one dial for the target.
"""

from __future__ import annotations

import pytest

from tests.process.exchanges import Action, Rule
from tests.process.stack import ProcessStack, eventually
from tests.process.transfers import (
    TARGET,
    TARGET_LABEL,
    assert_dialed_once,
    assert_handed_over,
    dial_rule,
    finish_transfer,
    live_call,
    request_transfer,
    transfer_in,
)

SHORT_RING_S = 0.3  # the target answers quickly (while confctl is down, where a test kills it)
RING_PAST_RESTART_S = 4.0  # the target still rings after a kill and a restart (about 1 s here)
KINDS = ["warm", "cold"]


async def target_connected(stack: ProcessStack, room: str) -> None:
    """The simulator has the target connected (it answered)."""
    truth = await stack.ground_truth(room)
    assert TARGET_LABEL in {p["label"] for p in truth["participants"]}, f"{TARGET_LABEL} not connected yet"


def join_callbacks_lost(stack: ProcessStack) -> list[str]:
    """The target's participant-join callbacks that confctl never answered (it was down)."""
    return [e.describe() for e in stack.front.exchanges
            if e.field("StatusCallbackEvent") == "participant-join" and e.field("ParticipantLabel") == TARGET_LABEL
            and e.status != 204]


async def join_was_lost(stack: ProcessStack) -> None:
    """Precondition: the simulator tried to deliver the target's join and no confctl answered it (the callback
    leaves the simulator's queue a moment after the leg connects, so this is waited for)."""
    assert join_callbacks_lost(stack), "precondition: the target's join reached no confctl"


@pytest.mark.parametrize("kind", KINDS)
async def test_kill_after_the_transfer_is_stored_before_the_dial_is_sent(stack: ProcessStack, kind: str) -> None:
    """Killed after the transfer is stored and before its dial reaches Twilio: after a restart the target
    is dialed once and the transfer ends as Twilio says."""
    _, room = await live_call(stack)
    await stack.set_directory(TARGET, after_s=SHORT_RING_S)
    dial = stack.twilio.add(dial_rule(Action.HOLD_REQUEST))
    await stack.kill_when(dial, during=request_transfer(stack, room, kind))
    assert not await stack.dials(TARGET_LABEL), "precondition: Twilio never received the first dial"
    await stack.restart()
    await finish_transfer(stack, room, kind)


@pytest.mark.parametrize("target_joins", ["after the restart", "while confctl is down"])
@pytest.mark.parametrize("kind", KINDS)
async def test_kill_after_twilio_dialed_before_the_answer_is_stored(
    stack: ProcessStack, kind: str, target_joins: str
) -> None:
    """Killed after Twilio acted on the dial and before its answer is stored: after a restart the dial is
    not sent again and the transfer ends as Twilio says."""
    _, room = await live_call(stack)
    down = target_joins == "while confctl is down"
    await stack.set_directory(TARGET, after_s=SHORT_RING_S if down else RING_PAST_RESTART_S)
    dial = stack.twilio.add(dial_rule(Action.HOLD_RESPONSE))
    await stack.kill_when(dial, during=request_transfer(stack, room, kind))
    if down:
        await eventually(lambda: target_connected(stack, room))
        await eventually(lambda: join_was_lost(stack))
    await stack.restart()
    if not down:
        truth = await stack.ground_truth(room)
        assert TARGET_LABEL in {p["label"] for p in truth["dialing"]}, \
            "precondition: the target still rings after the restart" + await stack.describe(room)
    await finish_transfer(stack, room, kind)


async def test_kill_during_the_consult(stack: ProcessStack) -> None:
    """Killed while a warm transfer is consulting: after a restart it completes through the API and the
    customer is with the target."""
    _, room = await live_call(stack)
    await stack.set_directory(TARGET, after_s=SHORT_RING_S)
    accepted = await request_transfer(stack, room, "warm")
    assert accepted.status_code == 202, accepted.text
    await eventually(lambda: transfer_in(stack, room, "consulting"))
    stack.serve.kill()
    await stack.restart()
    await finish_transfer(stack, room, "warm")


async def test_kill_while_the_cold_target_rings(stack: ProcessStack) -> None:
    """Killed while the customer waits on hold for a cold transfer's target, who answers while confctl is
    down: after a restart the transfer completes and the customer is off hold."""
    _, room = await live_call(stack)
    await stack.set_directory(TARGET, after_s=1.0)
    accepted = await request_transfer(stack, room, "cold")
    assert accepted.status_code == 202, accepted.text
    stack.serve.kill()
    await eventually(lambda: target_connected(stack, room))
    await eventually(lambda: join_was_lost(stack))
    await stack.restart()
    await finish_transfer(stack, room, "cold")


UPDATE_PARTICIPANT = r"/Conferences/[^/]+/Participants/[^/]+\.json$"  # POST: Twilio's UpdateParticipant


@pytest.mark.parametrize("kind", KINDS)
async def test_kill_after_the_intent_is_stored_before_any_twilio_request(stack: ProcessStack, kind: str) -> None:
    """Killed when the transfer's first Twilio request (an UpdateParticipant: end-on-exit or the hold) is on
    its way: after a restart the plan runs from there, the customer is handed over, bob dialed once."""
    _, room = await live_call(stack)
    await stack.set_directory(TARGET, after_s=SHORT_RING_S)
    first = stack.twilio.add(Rule(Action.HOLD_REQUEST, method="POST", path=UPDATE_PARTICIPANT, times=1))
    await stack.kill_when(first, during=request_transfer(stack, room, kind))
    assert not await stack.dials(TARGET_LABEL), "precondition: nothing was dialed"
    await stack.restart()
    await finish_transfer(stack, room, kind)


async def test_kill_after_completes_unhold_before_the_kick(stack: ProcessStack) -> None:
    """`complete` killed after the customer's unhold reached Twilio and before `from` is kicked: after a restart
    `from` is removed and the customer stays with bob, off hold."""
    _, room = await live_call(stack)
    await stack.set_directory(TARGET, after_s=SHORT_RING_S)
    accepted = await request_transfer(stack, room, "warm")
    assert accepted.status_code == 202, accepted.text
    transfer = await eventually(lambda: transfer_in(stack, room, "consulting"))
    kick = stack.twilio.add(Rule(Action.HOLD_REQUEST, method="DELETE", path=UPDATE_PARTICIPANT, times=1))
    await stack.kill_when(kick, during=stack.api().post(f"/v1/transfers/{transfer['id']}/complete"))
    truth = await stack.ground_truth(room)
    assert {p["label"] for p in truth["participants"]} == {"customer", "agent-1", TARGET_LABEL}, \
        "precondition: agent-1 is still in the conference"
    await stack.restart()
    await eventually(lambda: assert_handed_over(stack, room), explain=lambda: stack.describe(room))
    await eventually(lambda: transfer_in(stack, room, "completed"))
    await assert_dialed_once(stack, room)
