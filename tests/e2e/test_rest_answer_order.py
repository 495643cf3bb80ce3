"""Two quick PATCHes while Twilio's callbacks are slow: the answer and the state follow the newest REST answer."""

from __future__ import annotations

from tests.e2e.conftest import Stack
from tests.e2e.test_hold_mute_supervision import live_call


async def test_hold_then_unhold_at_once_answers_unheld_like_twilio(stack: Stack) -> None:
    """`hold: true` then at once `hold: false`, both answered before any callback: the second PATCH answers
    `hold: false`, and a GET agrees with the simulator's ground truth before and after the callbacks land."""
    room, _ = await live_call(stack)
    await stack.set_faults(callback_delay_ms=1000)  # far longer than two PATCHes and a GET
    first = await stack.api.patch(f"/v1/conferences/{room}/participants/customer", json={"hold": True})
    assert first.status_code == 200, first.text
    assert first.json()["hold"] is True
    second = await stack.api.patch(f"/v1/conferences/{room}/participants/customer", json={"hold": False})
    assert second.status_code == 200, second.text
    assert second.json()["hold"] is False

    truth = next(p for p in (await stack.ground_truth(room))["participants"] if p["label"] == "customer")
    assert truth["hold"] is False
    ours = (await stack.api.get(f"/v1/conferences/{room}/participants/customer")).json()
    assert ours["hold"] is False
    events = [e["type"] for e in await stack.events(room)]
    assert "participant.unheld" not in events  # the answers came before any of their callbacks

    await stack.set_faults(callback_delay_ms=0)
    await stack.settle()
    await stack.assert_projection_agrees(room)
