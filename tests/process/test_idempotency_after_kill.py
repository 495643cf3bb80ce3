"""A request with an Idempotency-Key whose process is killed mid-request: the key must not stay "in flight"
forever, and the repeat must resume the first request (same transfer, one dial), not start another one or be
refused with transfer_in_progress."""

from __future__ import annotations

import time

from tests.process.exchanges import Action
from tests.process.stack import ProcessStack
from tests.process.transfers import TARGET, TARGET_LABEL, dial_rule, finish_transfer, live_call

BODY = {"kind": "warm", "from": "agent-1", "to": TARGET, "label": TARGET_LABEL}


async def test_a_key_reserved_by_a_killed_process_is_taken_over_and_resumes_its_request(stack: ProcessStack) -> None:
    """Killed after the transfer was stored and before its dial reached Twilio; after a restart the repeat with
    the same key answers at once with the first request's transfer, which completes with one dial."""
    _, room = await live_call(stack)
    await stack.set_directory(TARGET, after_s=0.3)
    headers = {"Idempotency-Key": "transfer-after-kill-1"}
    dial = stack.twilio.add(dial_rule(Action.HOLD_REQUEST))
    first = stack.api().post(f"/v1/conferences/{room}/transfers", json=BODY, headers=headers)
    assert await stack.kill_when(dial, during=first) is None, "the first request died with its process"
    await stack.restart()
    began = time.monotonic()
    again = await stack.api().post(f"/v1/conferences/{room}/transfers", json=BODY, headers=headers)
    waited = time.monotonic() - began
    assert again.status_code == 202, f"{again.status_code} {again.text}" + await stack.describe(room)
    assert waited < 10, f"the repeat waited {waited:.1f}s for a request that died"
    transfers = (await stack.conference(room))["transfers"]
    assert [t["id"] for t in transfers] == [again.json()["id"]], "the repeat resumed the first transfer"
    replay = await stack.api().post(f"/v1/conferences/{room}/transfers", json=BODY, headers=headers)
    assert replay.status_code == 202 and replay.json()["id"] == again.json()["id"]
    await finish_transfer(stack, room, "warm")
