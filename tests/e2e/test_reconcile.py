"""Periodic reconciliation: facts whose callbacks never reached confctl are found on Twilio and stored as
corrections, with causation `reconcile`; conferences that did not drift get no event."""

from __future__ import annotations

from tests.e2e.conftest import Stack
from tests.e2e.support import _swallow_webhooks
from tests.e2e.test_hold_mute_supervision import live_call


async def sweep(stack: Stack) -> int:
    """One reconciliation pass, as the periodic task runs it."""
    reconciler = stack.app.state.container.reconciler
    assert reconciler is not None
    repaired: int = await reconciler.sweep()
    return repaired


async def test_a_hang_up_lost_while_confctl_was_down_is_reconciled(stack: Stack) -> None:
    """alice hangs up while confctl answers nothing: confctl still shows her joined until the sweep, which
    stores the correction (and nothing for a conference that did not drift)."""
    room, _ = await live_call(stack)
    other, _ = await live_call(stack)
    alice = (await stack.api.get(f"/v1/conferences/{room}/participants/alice")).json()
    stack.confctl.app = _swallow_webhooks  # confctl is down: Twilio's callbacks are lost
    try:
        await stack.hang_up(alice["call_sid"])
        await stack.settle()
    finally:
        stack.confctl.app = stack.app
    assert (await stack.api.get(f"/v1/conferences/{room}/participants/alice")).json()["status"] == "joined"
    untouched = len(await stack.events(other))

    assert await sweep(stack) == 1
    assert (await stack.api.get(f"/v1/conferences/{room}/participants/alice")).json()["status"] == "left"
    corrected = [e for e in await stack.events(room) if e["type"] == "participant.corrected"]
    assert corrected and corrected[-1]["actor"] == "confctl", corrected
    await stack.assert_audibility_agrees(room)
    assert len(await stack.events(other)) == untouched + 0, "no drift, no event"
    assert await sweep(stack) == 0


async def test_a_conference_that_ended_unseen_is_reconciled(stack: Stack) -> None:
    """Every leg hangs up while confctl is down: the sweep finds the conference completed at Twilio."""
    room, customer = await live_call(stack)
    alice = (await stack.api.get(f"/v1/conferences/{room}/participants/alice")).json()
    stack.confctl.app = _swallow_webhooks
    try:
        await stack.hang_up(customer)
        await stack.hang_up(alice["call_sid"])
        await stack.settle()
    finally:
        stack.confctl.app = stack.app
    assert (await stack.conference(room))["status"] == "in-progress"
    assert await sweep(stack) == 1
    assert (await stack.conference(room))["status"] == "completed"
