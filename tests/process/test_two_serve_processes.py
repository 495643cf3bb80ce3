"""Two `confctl serve` processes on one database split one conference's callbacks and commands.

Mute and unmute commands for two participants go through both processes at once, while Twilio's
conference callbacks are taken off the wire by the front proxy and delivered by the test instead: each
several times, shuffled, concurrently, alternating between the processes. The stored history must hold
every fact exactly once with versions 1..N, and both views must end as the last command left Twilio.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import Any

import httpx

from tests.process.exchanges import Action, Exchange, Rule
from tests.process.stack import ProcessStack, as_sets, eventually

REPEATS = 3  # every conference callback is delivered this many times
MUTES = [True, False, True, False, True, False, True]  # per participant, in order; the last one stays


async def toggle(stack: ProcessStack, room: str, label: str, first: int) -> list[httpx.Response]:
    """PATCH `label` through MUTES one after another, alternating the serve process (starting at `first`)."""
    answers = []
    for i, muted in enumerate(MUTES):
        answers.append(await stack.api((first + i) % 2).patch(f"/v1/conferences/{room}/participants/{label}",
                                                               json={"muted": muted}))
    return answers


async def deliver_all(stack: ProcessStack, captured: list[Exchange], rng: random.Random) -> list[httpx.Response]:
    """Each captured callback REPEATS times, shuffled, all at once, alternating between the processes."""
    deliveries = [exchange for exchange in captured for _ in range(REPEATS)]
    rng.shuffle(deliveries)
    return await asyncio.gather(*(stack.deliver(e, i % 2) for i, e in enumerate(deliveries)))


async def deliver_while(stack: ProcessStack, rule: Rule, running: asyncio.Future[Any],
                        rng: random.Random) -> list[httpx.Response]:
    """While the commands run, deliver each callback as soon as it is captured (and then again)."""
    answers: list[httpx.Response] = []
    done = 0
    while not running.done():
        await asyncio.sleep(0.02)
        fresh, done = rule.hits[done:], len(rule.hits)
        answers += await deliver_all(stack, fresh, rng)
    return answers


def sent(callbacks: list[dict[str, Any]], room: str) -> tuple[set[int], set[tuple[str, str, int]]]:
    """What the simulator sent about `room`: conference SequenceNumbers, call (CallSid, status, sequence)."""
    conference = {int(c["params"]["SequenceNumber"]) for c in callbacks
                  if c["url"].endswith("/twilio/conference-status") and c["params"].get("FriendlyName") == room}
    calls = {(c["params"]["CallSid"], c["params"]["CallStatus"], int(c["params"].get("SequenceNumber", -1)))
             for c in callbacks if "/twilio/call-status" in c["url"] and f"conference_id={room}" in c["url"]}
    return conference, calls


async def test_two_processes_split_one_conference(two_serves: ProcessStack) -> None:
    """Callbacks (each three times) and commands of one conference spread over two processes at once: each
    fact stored exactly once, versions 1..N, and the final state is what the last commands made it."""
    stack = two_serves
    _, room = await stack.inbound_call()
    agent = await stack.add_participant(room, "client:alice")
    response = await stack.api(1).post(f"/v1/conferences/{room}/participants",
                                       json={"to": "+15557654321", "role": "external"})
    assert response.status_code == 202, response.text
    external = response.json()["label"]
    await eventually(lambda: stack.assert_joined(room, external))

    rng = random.Random(11)
    capture = stack.front.add(Rule(Action.RESPOND, status=204, method="POST", path="^/twilio/conference-status$"))
    commands = asyncio.gather(toggle(stack, room, agent, 0), toggle(stack, room, external, 1))
    early = await deliver_while(stack, capture, commands, rng)
    answers = [a for per_label in commands.result() for a in per_label]
    await eventually(lambda: _captured_mutes(capture, 2 * len(MUTES)))
    late = await deliver_all(stack, capture.hits, rng)  # all again, the late ones for the first time
    stack.front.remove(capture)

    assert [a.status_code for a in answers] == [200] * len(answers), [a.text for a in answers if a.status_code != 200]
    assert {d.status_code for d in early + late} == {204}, [d.text for d in early + late if d.status_code != 204]
    explain = await stack.describe(room)
    events = await stack.events(room)
    assert events == await stack.events(room, index=1), "the two processes read different histories"
    assert [e["version"] for e in events] == list(range(1, len(events) + 1)), f"versions with gaps: {explain}"
    positions = [e["position"] for e in events]
    assert positions == sorted(set(positions)), "global positions out of order or repeated"

    conference_facts = Counter(e["data"]["sequence"] for e in events if "conference_sid" in e["data"])
    call_facts = Counter((e["data"]["call_sid"], e["data"]["status"], e["data"]["sequence"])
                         for e in events if e["type"] == "call.status_changed")
    twice = [f for f, n in [*conference_facts.items(), *call_facts.items()] if n > 1]
    assert not twice, f"facts stored more than once: {twice}"
    conference_sent, calls_sent = sent(await stack.sim_callbacks(), room)
    assert set(conference_facts) == conference_sent, \
        f"conference callbacks lost: {sorted(conference_sent - set(conference_facts))}, " \
        f"stored but never sent: {sorted(set(conference_facts) - conference_sent)}"
    assert set(call_facts) == calls_sent, f"call callbacks lost: {sorted(calls_sent - set(call_facts))}"
    types = Counter(e["type"] for e in events)
    assert types["participant.update_requested"] == types["participant.updated"] == 2 * len(MUTES), types
    updates = [r for r in await stack.rest_requests() if r["operation"] == "UpdateParticipant"]
    assert len(updates) == 2 * len(MUTES), f"Twilio received {len(updates)} updates for {2 * len(MUTES)} commands"

    truth = {p["label"]: p["muted"] for p in (await stack.ground_truth(room))["participants"]}
    assert truth == {"customer": False, agent: MUTES[-1], external: MUTES[-1]}, truth
    for index in (0, 1):
        ours = await stack.conference(room, index)
        assert ours["version"] == len(events)
        assert {p["label"]: p["muted"] for p in ours["participants"] if p["status"] == "joined"} == truth, explain
        assert as_sets(await stack.our_audibility(room, index)) == as_sets(await stack.sim_audibility(room)), explain


async def _captured_mutes(rule: Rule, expected: int) -> None:
    """The front proxy has taken every mute and unmute callback of the commands off the wire."""
    kinds = Counter(e.field("StatusCallbackEvent") for e in rule.hits)
    assert kinds["participant-mute"] + kinds["participant-unmute"] == expected, kinds
