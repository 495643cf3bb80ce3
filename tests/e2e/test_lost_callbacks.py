"""Lost callbacks are noticed and repaired with no request from any client: a SequenceNumber gap, a
conference-start that never came and legs dialing far past their ring time each get their conference
reconciled within seconds with the periodic sweep off; a gap that fills within its grace reads nothing from
Twilio; a hold and a warm transfer under a 20 % callback drop rate end as Twilio has them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from twilio.rest import Client

from tests.e2e.support import ACCOUNT_SID, AUTH_TOKEN, Stack, build_stack, sdk_http
from tests.e2e.test_hold_mute_supervision import live_call
from tests.support.metrics import scrape, value

TRIGGERS = "confctl_reconcile_triggers_total"
FINAL_CALL_STATUSES = {"completed", "busy", "no-answer", "failed", "canceled"}
TWILIO_READS = {"FetchConference", "ListConference", "ListParticipant"}

Pick = Callable[[str, dict[str, str], dict[str, str]], bool]  # (path, query, form): is this the callback?


def conference_event(event: str, label: str | None = None) -> Pick:
    """The conference status callback `event` (of the participant labelled `label`)."""
    return lambda path, _query, form: (path == "/twilio/conference-status" and form.get("StatusCallbackEvent") == event
                                       and (label is None or form.get("ParticipantLabel") == label))


def call_ended(label: str) -> Pick:
    """The final call status callback of the leg confctl dialed as `label`."""
    return lambda path, query, form: (path == "/twilio/call-status" and query.get("label") == label
                                      and form.get("CallStatus") in FINAL_CALL_STATUSES)


class Lose:
    """Sits between the simulator and confctl: the first callback each rule picks never reaches confctl (the
    simulator is answered 204, so it does not retry), or, with `late_s`, reaches it that much later."""

    def __init__(self, app: ASGIApp, *rules: Pick, late_s: float | None = None) -> None:
        self.app = app
        self.rules = list(rules)
        self.late_s = late_s
        self.picked: list[dict[str, str]] = []
        self.late: set[asyncio.Task[None]] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        query = dict(parse_qsl(scope["query_string"].decode()))
        form = dict(parse_qsl(body.decode(), keep_blank_values=True))
        rule = next((r for r in self.rules if r(scope["path"], query, form)), None)
        if rule is None:
            await self.app(scope, _replay(body), send)
            return
        self.rules.remove(rule)
        self.picked.append(form)
        if self.late_s is not None:
            task = asyncio.create_task(self._deliver_later(dict(scope), body))
            self.late.add(task)
            task.add_done_callback(self.late.discard)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def _deliver_later(self, scope: Scope, body: bytes) -> None:
        assert self.late_s is not None
        await asyncio.sleep(self.late_s)

        async def ignore(_message: Message) -> None:
            return None

        await self.app(scope, _replay(body), ignore)


def _replay(body: bytes) -> Receive:
    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


@contextlib.asynccontextmanager
async def stack_with(engine: AsyncEngine, **overrides: Any) -> AsyncIterator[Stack]:
    """The e2e stack with these settings; its background work (watch, sweep) stopped at the end."""
    async with build_stack(engine, **overrides) as stack:
        container = stack.app.state.container
        try:
            yield stack
        finally:
            if getattr(container, "suspicions", None) is not None:
                await container.suspicions.aclose()
            await container.reconciler.aclose()


def quiet(engine: AsyncEngine, grace_s: float = 0.3) -> contextlib.AbstractAsyncContextManager[Stack]:
    """No periodic sweep: whatever is repaired, a lost-callback trigger repaired it."""
    return stack_with(engine, reconcile_s=0, reconcile_grace_s=grace_s, reconcile_dialing_margin_s=0.2)


async def eventually(probe: Callable[[], Awaitable[bool]], within_s: float, what: str) -> None:
    """Wait (reading only) until `probe` holds."""
    deadline = asyncio.get_running_loop().time() + within_s
    while not await probe():
        assert asyncio.get_running_loop().time() < deadline, f"not within {within_s} s: {what}"
        await asyncio.sleep(0.05)


async def status_of(stack: Stack, room: str, label: str) -> str:
    response = await stack.api.get(f"/v1/conferences/{room}/participants/{label}")
    assert response.status_code == 200, response.text
    status: str = response.json()["status"]
    return status


async def corrections(stack: Stack, room: str) -> list[tuple[str, dict[str, Any]]]:
    """The stored corrections of a conference with their metadata (which the events API does not show)."""
    stored = await stack.app.state.container.store.read_stream(room)
    return [(e.type, dict(e.metadata)) for e in stored if e.type.endswith(".corrected")]


async def dial(stack: Stack, room: str, label: str, **extra: Any) -> None:
    response = await stack.api.post(f"/v1/conferences/{room}/participants",
                                    json={"to": f"client:{label}", "role": "agent", "label": label, **extra})
    assert response.status_code == 202, response.text


async def mute_on_twilio(stack: Stack, conference_sid: str, call_sid: str) -> None:
    """Mute a leg on Twilio's side (the twilio SDK on the simulator), not through confctl."""
    http = sdk_http(stack.simulator.app)
    try:
        await Client(ACCOUNT_SID, AUTH_TOKEN, http_client=http).conferences(conference_sid).participants(
            call_sid).update_async(muted=True)
    finally:
        await http.aclose()


async def twilio_reads(stack: Stack) -> int:
    return sum(1 for r in await stack.rest_requests() if r["operation"] in TWILIO_READS)


async def test_a_lost_join_followed_by_another_callback_is_repaired_as_a_sequence_gap(engine: AsyncEngine) -> None:
    """bob's participant-join never arrives; the next callback (a mute made on Twilio's side) shows the gap,
    and confctl reconciles the conference by itself: bob joined, stored as a correction triggered by the gap."""
    async with quiet(engine) as stack:
        room, customer = await live_call(stack)
        before = await scrape(stack.api)
        stack.confctl.app = lose = Lose(stack.app, conference_event("participant-join", "bob"))
        await dial(stack, room, "bob")
        await stack.settle()
        assert lose.picked and await status_of(stack, room, "bob") == "ringing"

        await mute_on_twilio(stack, (await stack.ground_truth(room))["sid"], customer)
        await stack.settle()

        async def bob_joined() -> bool:
            return await status_of(stack, room, "bob") == "joined"

        await eventually(bob_joined, 5.0, "bob repaired to joined")
        fixed = await corrections(stack, room)
        assert fixed and all(m["trigger"] == "sequence_gap" and m["causation"] == "reconcile" for _, m in fixed)
        await stack.assert_projection_agrees(room)
        await stack.assert_audibility_agrees(room)
        after = await scrape(stack.api)
        assert value(after, TRIGGERS, trigger="sequence_gap", outcome="repaired") - value(
            before, TRIGGERS, trigger="sequence_gap", outcome="repaired") == 1


async def test_a_lost_conference_start_is_repaired(engine: AsyncEngine) -> None:
    """The conference-start after alice's join never arrives (nothing follows it): the conference, still `init`
    with both legs in, is reconciled to in-progress after the grace."""
    async with quiet(engine) as stack:
        _, room = await stack.inbound_call()
        stack.confctl.app = lose = Lose(stack.app, conference_event("conference-start"))
        await dial(stack, room, "alice")
        await stack.settle()
        assert lose.picked

        async def started() -> bool:
            return (await stack.conference(room))["status"] == "in-progress"

        await eventually(started, 5.0, "the conference repaired to in-progress")
        assert [(t, m["trigger"]) for t, m in await corrections(stack, room)] == [
            ("conference.corrected", "start_missing")]
        await stack.assert_projection_agrees(room)
        await stack.assert_audibility_agrees(room)


async def test_legs_dialing_far_past_their_ring_time_are_repaired(engine: AsyncEngine) -> None:
    """bob answers but his join is lost; carol rings out but her leave and her call's end are lost. Nothing
    follows, so no gap shows: once their 5 s ring time, Twilio's 5 s buffer and the margin are over, confctl
    reconciles the conference: bob joined, carol gone."""
    async with quiet(engine) as stack:
        room, _ = await live_call(stack)
        await stack.set_directory("client:carol", "no-answer")
        stack.confctl.app = lose = Lose(stack.app, conference_event("participant-join", "bob"),
                                        conference_event("participant-leave", "carol"), call_ended("carol"))
        await dial(stack, room, "bob", timeout_s=5)
        await dial(stack, room, "carol", timeout_s=5)
        await stack.settle()
        assert len(lose.picked) == 3, lose.picked
        assert await status_of(stack, room, "bob") == "ringing"
        assert await status_of(stack, room, "carol") in ("dialing", "ringing")

        async def repaired() -> bool:
            return (await status_of(stack, room, "bob"), await status_of(stack, room, "carol")) == ("joined", "left")

        await eventually(repaired, 15.0, "bob joined and carol gone")
        fixed = await corrections(stack, room)
        assert len(fixed) == 2 and all(m["trigger"] == "dialing_overdue" for _, m in fixed), fixed
        await stack.assert_projection_agrees(room)
        await stack.assert_audibility_agrees(room)


async def test_a_gap_that_fills_within_the_grace_reads_nothing_from_twilio(engine: AsyncEngine) -> None:
    """The customer's hold callback arrives after alice's mute callback, well within the grace: confctl sees
    the gap close, reads nothing from Twilio and stores no correction."""
    async with quiet(engine, grace_s=1.5) as stack:
        room, _ = await live_call(stack)
        before, reads = await scrape(stack.api), await twilio_reads(stack)
        stack.confctl.app = lose = Lose(stack.app, conference_event("participant-hold", "customer"), late_s=0.2)
        held = await stack.api.patch(f"/v1/conferences/{room}/participants/customer", json={"hold": True})
        assert held.status_code == 200, held.text
        muted = await stack.api.patch(f"/v1/conferences/{room}/participants/alice", json={"muted": True})
        assert muted.status_code == 200, muted.text
        await stack.settle()
        assert lose.picked
        await asyncio.sleep(2.0)  # past the grace

        assert not lose.late
        assert await twilio_reads(stack) == reads
        assert await corrections(stack, room) == []
        after = await scrape(stack.api)
        assert value(after, TRIGGERS, trigger="sequence_gap", outcome="cleared") - value(
            before, TRIGGERS, trigger="sequence_gap", outcome="cleared") == 1
        assert value(after, TRIGGERS, trigger="sequence_gap", outcome="repaired") == value(
            before, TRIGGERS, trigger="sequence_gap", outcome="repaired")
        await stack.assert_projection_agrees(room)


# Loses alice's first call statuses and her join (a gap: the conference-start follows), bob's join (nothing follows
# it while the consult waits: he is overdue after his 5 s ring time) and the customer's unhold (its REST answer
# has it).
SEED = 4


async def agree(stack: Stack, room: str, within_s: float = 10.0) -> None:
    """Wait (reading only) until confctl's view of the conference is Twilio's: status, live legs, flags, audio."""

    async def same() -> bool:
        try:
            await stack.assert_projection_agrees(room)
            await stack.assert_audibility_agrees(room)
        except AssertionError:
            return False
        return True

    await eventually(same, within_s, f"confctl agrees with Twilio on {room}")


async def test_a_hold_and_a_warm_transfer_losing_a_fifth_of_the_callbacks_end_as_twilio_has_them(
        engine: AsyncEngine) -> None:
    """A fifth of Twilio's callbacks are lost (seeded), the periodic sweep off: before each step and at the end,
    confctl comes to agree with Twilio by itself; every repair is a correction a trigger stored, none asked for
    by a client."""
    async with quiet(engine) as stack:
        await stack.set_faults(callback_drop_rate=0.2, seed=SEED)
        _, room = await stack.inbound_call()
        await dial(stack, room, "alice")
        await stack.settle()
        await agree(stack, room)
        for hold in (True, False):
            changed = await stack.api.patch(f"/v1/conferences/{room}/participants/customer", json={"hold": hold})
            assert changed.status_code == 200, changed.text
            await stack.settle()
            await agree(stack, room)

        started = await stack.api.post(f"/v1/conferences/{room}/transfers",
                                       json={"from": "alice", "kind": "warm", "to": "client:bob", "label": "bob",
                                             "timeout_s": 5})
        assert started.status_code == 202, started.text
        transfer_id = started.json()["id"]
        await stack.settle()

        async def consulting() -> bool:
            state: str = (await stack.api.get(f"/v1/transfers/{transfer_id}")).json()["state"]
            return state == "consulting"

        await eventually(consulting, 15.0, "the transfer consulting")
        await agree(stack, room)
        done = await stack.api.post(f"/v1/transfers/{transfer_id}/complete")
        assert done.status_code == 200 and done.json()["state"] == "completed", done.text
        await stack.settle()
        await agree(stack, room)

        truth = await stack.ground_truth(room)
        assert sorted(p["label"] for p in truth["participants"]) == ["bob", "customer"]
        assert not any(p["hold"] for p in truth["participants"])
        assert await status_of(stack, room, "alice") == "left"
        dropped = [c for c in (await stack.sim.get("/simulator/callbacks")).json() if c.get("dropped")]
        fixed = await corrections(stack, room)
        assert len(dropped) == 5 and {m["trigger"] for _, m in fixed} == {"sequence_gap", "dialing_overdue"}, fixed
        assert all(m["causation"] == "reconcile" and m["actor"] == "confctl" for _, m in fixed)
