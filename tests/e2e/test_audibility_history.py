"""Who heard whom, and when, from the log: `/audibility?at=` and `/timeline` over a scripted call end to end.

The call: a customer and agent alice, a hold and an unhold, a warm transfer to bob (consult, complete), then a
supervisor who monitors, coaches bob and barges in. After every settled step the live answer and the version
are recorded; the history must give back exactly those, and the fold of the log at every other version.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from confctl.domain.audibility import audibility
from confctl.domain.codec import decode
from confctl.domain.evolve import evolve
from confctl.domain.model import Conference
from tests.e2e.conftest import Stack
from tests.e2e.test_hold_mute_supervision import live_call, patch


async def _step(stack: Stack, room: str, name: str, recorded: list[tuple[str, int, dict[str, Any]]]) -> None:
    """Record, once everything has settled, the live audibility and the conference's version."""
    await stack.settle()
    live = await stack.our_audibility(room)
    version = (await stack.conference(room))["version"]
    recorded.append((name, version, live))


async def scripted_call(stack: Stack) -> tuple[str, list[tuple[str, int, dict[str, Any]]]]:
    """Run the call; returns its conference id and (step, version, live audibility) after every step."""
    recorded: list[tuple[str, int, dict[str, Any]]] = []
    room, _ = await live_call(stack)
    await _step(stack, room, "talking", recorded)
    await patch(stack, room, "customer", {"hold": True})
    await _step(stack, room, "held", recorded)
    await patch(stack, room, "customer", {"hold": False})
    await _step(stack, room, "unheld", recorded)
    started = await stack.api.post(f"/v1/conferences/{room}/transfers",
                                   json={"from": "alice", "kind": "warm", "to": "client:bob", "label": "bob"})
    assert started.status_code == 202, started.text
    await _step(stack, room, "consulting", recorded)
    done = await stack.api.post(f"/v1/transfers/{started.json()['id']}/complete")
    assert done.status_code == 200, done.text
    await _step(stack, room, "completed", recorded)
    added = await stack.api.post(f"/v1/conferences/{room}/participants",
                                 json={"to": "client:sue", "role": "supervisor", "label": "sue"})
    assert added.status_code == 202, added.text
    await _step(stack, room, "monitor", recorded)
    await patch(stack, room, "sue", {"mode": "coach", "coach": "bob"})
    await _step(stack, room, "coach", recorded)
    await patch(stack, room, "sue", {"mode": "barge"})
    await _step(stack, room, "barge", recorded)
    return room, recorded


def folded(room: str, events: list[dict[str, Any]], version: int) -> dict[str, Any]:
    """The audibility of the log's first `version` events, folded here with the domain's own functions."""
    state = Conference(id=room)
    for event in events[:version]:
        state = evolve(state, decode(event["type"], event["data"]))
    result = audibility(state)
    return {"hears": result.hears, "music": result.music}


async def audibility_at(stack: Stack, room: str, at: str) -> dict[str, Any]:
    response = await stack.api.get(f"/v1/conferences/{room}/audibility", params={"at": at})
    assert response.status_code == 200, (at, response.text)
    result: dict[str, Any] = response.json()
    return result


async def test_audibility_at_a_version_is_what_it_was_then(stack: Stack) -> None:
    """`?at=<version>` gives back the live answer recorded at that version, and the log's fold at every version."""
    room, recorded = await scripted_call(stack)
    for name, version, live in recorded:
        assert await audibility_at(stack, room, str(version)) == live, name
    events = await stack.events(room)
    assert [e["version"] for e in events] == list(range(1, len(events) + 1))
    for version in range(1, len(events) + 1):
        assert await audibility_at(stack, room, str(version)) == folded(room, events, version), version
    # Beyond the last version: the latest state, as without `at`.
    assert await audibility_at(stack, room, str(len(events) + 1000)) == await stack.our_audibility(room)
    consulting = next(live for name, _, live in recorded if name == "consulting")
    assert consulting["music"] == ["customer"] and consulting["hears"]["alice"] == ["bob"]


async def test_audibility_at_a_time_folds_the_events_recorded_by_then(stack: Stack) -> None:
    """`?at=<RFC 3339 time>` folds the events stored at or before that time; before the first one it is a 404."""
    room, recorded = await scripted_call(stack)
    events = await stack.events(room)
    for name, version, live in recorded:
        at = events[version - 1]["at"]
        # Events stored in one transaction share their time: the state at that time includes them all.
        last = max(e["version"] for e in events if e["at"] == at)
        assert await audibility_at(stack, room, at) == folded(room, events, last), name
        if last == version:
            assert await audibility_at(stack, room, at) == live, name
        # The same instant in another offset is the same time.
        elsewhere = datetime.fromisoformat(at).astimezone(timezone(timedelta(hours=5, minutes=30))).isoformat()
        assert await audibility_at(stack, room, elsewhere) == folded(room, events, last), name
    first = datetime.fromisoformat(events[0]["at"])
    z_form = (first + timedelta(days=1)).astimezone(UTC).isoformat().replace("+00:00", "Z")
    assert await audibility_at(stack, room, z_form) == await stack.our_audibility(room)
    before = await stack.api.get(f"/v1/conferences/{room}/audibility",
                                 params={"at": (first - timedelta(seconds=1)).isoformat()})
    assert before.status_code == 404 and before.json()["code"] == "conference_not_found", before.text
    zero = await stack.api.get(f"/v1/conferences/{room}/audibility", params={"at": "0"})
    assert zero.status_code == 404 and zero.json()["code"] == "conference_not_found", zero.text


async def test_a_bad_at_is_a_422_and_an_unknown_conference_a_404(stack: Stack) -> None:
    """An `at` that is neither a version nor an RFC 3339 time with an offset is 422 invalid_request."""
    room, _ = await live_call(stack)
    for bad in ("yesterday", "-1", "1.5", "12abc", "2024-05-01T12:00:00", "2024-13-01T00:00:00Z", "",
                str(2**63)):
        response = await stack.api.get(f"/v1/conferences/{room}/audibility", params={"at": bad})
        assert response.status_code == 422, (bad, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"] == "invalid_request", bad
    for path in ("audibility?at=3", "audibility?at=2024-05-01T12:00:00Z", "timeline"):
        response = await stack.api.get(f"/v1/conferences/room-nobody/{path}")
        assert response.status_code == 404 and response.json()["code"] == "conference_not_found", (path, response.text)


def intervals(timeline: dict[str, Any], label: str, kind: str) -> list[dict[str, Any]]:
    return [i for p in timeline["participants"] if p["label"] == label for i in p["intervals"] if i["kind"] == kind]


async def test_the_timeline_has_the_intervals_the_log_says(stack: Stack) -> None:
    """Hold covering the consult, the coach interval naming bob, the actors of commands and of callbacks."""
    room, recorded = await scripted_call(stack)
    response = await stack.api.get(f"/v1/conferences/{room}/timeline")
    assert response.status_code == 200, response.text
    timeline = response.json()
    events = await stack.events(room)
    assert timeline["conference_id"] == room and timeline["version"] == len(events)
    at = {e["version"]: e["at"] for e in events}
    actor = {e["version"]: e["actor"] for e in events}
    roles = {p["label"]: p["role"] for p in timeline["participants"]}
    assert roles == {"customer": "customer", "alice": "agent", "bob": "agent", "sue": "supervisor"}
    for participant in timeline["participants"]:
        assert participant["call_sid"], participant
        for interval in participant["intervals"]:
            # Each interval is placed on the log: its times and actors are those of its start and end events.
            start = interval["from_version"]
            assert interval["from"] == at[start] and interval["actor"] == actor[start]
            if interval["to_version"] is None:
                assert interval["to"] is None and interval["ended_by"] is None
            else:
                assert interval["to"] == at[interval["to_version"]] and interval["to_version"] > start
                assert interval["ended_by"] == actor[interval["to_version"]]
    version = {name: v for name, v, _ in recorded}

    # The customer: joined throughout, held twice (the explicit hold, then the consult), never muted.
    assert [(i["actor"], i["to"]) for i in intervals(timeline, "customer", "joined")] == [("twilio", None)]
    holds = intervals(timeline, "customer", "hold")
    assert len(holds) == 2, holds
    assert holds[0]["from_version"] <= version["held"] < holds[0]["to_version"] <= version["unheld"]
    assert holds[1]["from_version"] <= version["consulting"] < holds[1]["to_version"] <= version["completed"]
    assert holds[0]["actor"] == "admin"  # the hold was the API key's command

    # alice left with the transfer; bob rang, then joined; both joins were told by Twilio.
    alice = intervals(timeline, "alice", "joined")
    assert len(alice) == 1 and version["consulting"] < alice[0]["to_version"] <= version["completed"]
    assert [i["actor"] for i in intervals(timeline, "bob", "joined")] == ["twilio"]
    assert intervals(timeline, "bob", "ringing")

    # sue: monitor, then coaching bob, then barge, one after the other.
    monitor, coaching, barge = (intervals(timeline, "sue", k) for k in ("monitor", "coaching", "barge"))
    assert len(monitor) == 1 and len(coaching) == 1 and len(barge) == 1, timeline
    assert coaching[0]["with"] == "bob"
    assert monitor[0]["from_version"] <= version["monitor"] < monitor[0]["to_version"] <= version["coach"]
    assert coaching[0]["from_version"] <= version["coach"] < coaching[0]["to_version"] <= version["barge"]
    assert barge[0]["from_version"] <= version["barge"] and barge[0]["to"] is None
    assert {i["actor"] for p in timeline["participants"] for i in p["intervals"]} <= {"admin", "twilio"}
