"""A webhook's answer never waits on Twilio: with every REST request answered only after 20 s (the twilio
proxy delays them), each callback of a conference is still answered within 1 s, also the callbacks whose
reactions need Twilio. The front proxy, which is the public URL the simulator calls, times every answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from tests.process.exchanges import Action, Exchange, Rule
from tests.process.stack import ProcessStack
from tests.process.transfers import TARGET, TARGET_LABEL, live_call, request_transfer

TWILIO_DELAY_S = 20.0
BUDGET_S = 1.0  # longest answer allowed to any webhook
# Where a hang-up starts: FetchCall, then UpdateCall on the same resource.
CALL_RESOURCE = r"/Calls/[^/]+\.json$"
PARTICIPANT_RESOURCE = r"/Participants/[^/]+\.json$"


def slow_twilio(stack: ProcessStack, reaction: Rule) -> Rule:
    """`reaction` (delayed itself) to wait on, then every other REST request delayed by TWILIO_DELAY_S."""
    stack.twilio.add(reaction)
    stack.twilio.add(Rule(Action.DELAY, delay_s=TWILIO_DELAY_S))
    return reaction


def is_callback(label: str, event: str) -> Callable[[Exchange], bool]:
    """A conference callback about `label` of kind `event`."""
    return lambda e: e.field("ParticipantLabel") == label and e.field("StatusCallbackEvent") == event


async def assert_every_webhook_answered_in_time(stack: ProcessStack, room: str, since: float,
                                                trigger: Exchange) -> None:
    """Give the triggering callback its budget (and the ones behind it a moment), then no webhook received
    since `since` may have waited, or still be waiting, longer than BUDGET_S."""
    with contextlib.suppress(AssertionError):  # a late answer is reported below, with every other one
        await stack.front.wait_until(lambda e: e is trigger and e.reached("answered"), "answer",
                                     within_s=BUDGET_S + 0.5)
        await asyncio.sleep(0.5)  # the callbacks queued behind it in the simulator
    now = time.monotonic()
    late = [f"  {e.describe()}" for e in stack.front.exchanges if e.received_at >= since and e.waited(now) > BUDGET_S]
    answered = [e for e in stack.front.exchanges if e.received_at >= since]
    assert not late, (f"{len(late)} of {len(answered)} webhooks waited over {BUDGET_S}s while Twilio took "
                      f"{TWILIO_DELAY_S}s:\n" + "\n".join(late) + await stack.describe(room))


async def test_a_cold_target_joining_is_answered_at_once(stack: ProcessStack) -> None:
    """The cold transfer's target joins while Twilio answers after 20 s: the join callback, whose reaction
    takes the customer off hold on Twilio, is answered within 1 s."""
    _, room = await live_call(stack)
    await stack.set_directory(TARGET, after_s=1.0)
    accepted = await request_transfer(stack, room, "cold")
    assert accepted.status_code == 202, accepted.text
    since = time.monotonic()
    unhold = slow_twilio(stack, Rule(Action.DELAY, method="POST", path=PARTICIPANT_RESOURCE,
                                     fields={"Hold": "false"}, delay_s=TWILIO_DELAY_S))
    joined = await stack.front.wait_until(is_callback(TARGET_LABEL, "participant-join"), "join of the target")
    await stack.twilio.wait_for(unhold, within_s=5.0)  # confctl did react with a request to Twilio
    await assert_every_webhook_answered_in_time(stack, room, since, joined)


async def test_a_customer_leaving_mid_transfer_is_answered_at_once(stack: ProcessStack) -> None:
    """The customer hangs up while a warm transfer's target rings and Twilio answers after 20 s: the leave
    callback, whose reaction hangs up the target on Twilio, is answered within 1 s."""
    customer, room = await live_call(stack)
    await stack.set_directory(TARGET, after_s=30.0)
    accepted = await request_transfer(stack, room, "warm")
    assert accepted.status_code == 202, accepted.text
    since = time.monotonic()
    hang_up = slow_twilio(stack, Rule(Action.DELAY, path=CALL_RESOURCE, delay_s=TWILIO_DELAY_S))
    await stack.hang_up(customer)
    left = await stack.front.wait_until(is_callback("customer", "participant-leave"), "leave of the customer")
    await stack.twilio.wait_for(hang_up, within_s=5.0)  # confctl did react with a request to Twilio
    await assert_every_webhook_answered_in_time(stack, room, since, left)
