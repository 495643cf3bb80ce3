"""Transfer steps and checks shared by the real-process tests: a live call, a transfer, its hand-over.

The checks read the simulator's ground truth first (who is connected, who is on hold, who is still
ringing, how many dials Twilio received) and compare confctl's view with it.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import httpx

from tests.process.exchanges import Action, Rule
from tests.process.stack import Final, ProcessStack, as_sets, eventually

AGENT = "client:alice"
TARGET, TARGET_LABEL = "client:bob", "bob"
CREATE_PARTICIPANT = r"/Conferences/[^/]+/Participants\.json$"  # POST: Twilio's CreateParticipant
ENDED = frozenset({"completed", "cancelled", "failed"})


async def live_call(stack: ProcessStack) -> tuple[str, str]:
    """A customer with agent-1 (client:alice) in a started conference; (customer CallSid, conference id)."""
    customer, room = await stack.inbound_call()
    assert await stack.add_participant(room, AGENT) == "agent-1"
    return customer, room


def dial_rule(action: Action, label: str = TARGET_LABEL) -> Rule:
    """The first CreateParticipant for `label` gets `action`; later ones (a retry, a resumed effect) pass."""
    return Rule(action, method="POST", path=CREATE_PARTICIPANT, fields={"Label": label}, times=1)


async def request_transfer(stack: ProcessStack, room: str, kind: str, index: int = 0) -> httpx.Response:
    """POST a warm or cold transfer of the customer from agent-1 to bob (label `bob`)."""
    body = {"kind": kind, "from": "agent-1", "to": TARGET, "label": TARGET_LABEL}
    return await stack.api(index).post(f"/v1/conferences/{room}/transfers", json=body)


async def transfer_in(stack: ProcessStack, room: str, state: str) -> dict[str, Any]:
    """The conference's one transfer, which must be in `state` (ended in another state: `Final`)."""
    __tracebackhide__ = True
    transfers = (await stack.conference(room))["transfers"]
    if len(transfers) != 1:
        raise Final(f"confctl has {len(transfers)} transfers in {room}, expected 1: {transfers}")
    transfer: dict[str, Any] = transfers[0]
    if transfer["state"] != state:
        failure = Final if transfer["state"] in ENDED else AssertionError
        raise failure(f"the transfer is {transfer['state']} (reason {transfer['failure_reason']}), "
                      f"expected {state}")
    return transfer


async def assert_handed_over(stack: ProcessStack, room: str) -> None:
    """Ground truth: the customer and bob connected, nobody on hold, nothing ringing; confctl hears it so too."""
    __tracebackhide__ = True
    truth = await stack.ground_truth(room)
    connected = {p["label"]: p for p in truth["participants"]}
    assert set(connected) == {"customer", TARGET_LABEL}, \
        f"the simulator has {sorted(connected)} connected, expected customer and {TARGET_LABEL}"
    held = sorted(label for label, p in connected.items() if p["hold"])
    assert not held, f"left on hold in the simulator: {held}"
    assert not truth["dialing"], f"legs still ringing in the simulator: {[p['label'] for p in truth['dialing']]}"
    ours, theirs = as_sets(await stack.our_audibility(room)), as_sets(await stack.sim_audibility(room))
    assert ours == theirs, f"who hears whom: confctl {ours} != simulator {theirs}"


async def assert_dialed_once(stack: ProcessStack, room: str, label: str = TARGET_LABEL) -> None:
    """Twilio's own request log holds exactly one CreateParticipant for `label`: no dial was sent twice."""
    dials = await stack.dials(label)
    assert len(dials) == 1, f"Twilio received {len(dials)} CreateParticipant for {label}:" + await stack.describe(room)


async def finish_transfer(stack: ProcessStack, room: str, kind: str) -> None:
    """Wait for the state Twilio's facts imply (cold: completed, warm: consulting, then complete it through
    the API); then the customer must be with bob, nobody on hold, and bob dialed exactly once."""
    explain = partial(stack.describe, room)
    transfer = await eventually(lambda: transfer_in(stack, room, "consulting" if kind == "warm" else "completed"),
                                explain=explain)
    if kind == "warm":
        done = await stack.api().post(f"/v1/transfers/{transfer['id']}/complete")
        assert done.status_code == 200 and done.json()["state"] == "completed", \
            f"complete: {done.status_code} {done.text}" + await stack.describe(room)
    await eventually(lambda: assert_handed_over(stack, room), explain=explain)
    await eventually(lambda: transfer_in(stack, room, "completed"), explain=explain)
    await assert_dialed_once(stack, room)
