"""Twilio REST operations show on /metrics by operation and outcome, through the whole stack."""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import Stack
from tests.support.metrics import scrape, value

REQUESTS = "confctl_twilio_requests_total"


def difference(before: Any, after: Any, name: str, **labels: str) -> float:
    """How much a sample grew between two scrapes."""
    return value(after, name, **labels) - value(before, name, **labels)


async def test_twilio_operations_are_counted_by_outcome(stack: Stack) -> None:
    """A dial that Twilio accepts counts as ok, an update it refuses as twilio_error; the latency is recorded."""
    _, room = await stack.inbound_call()
    before = await scrape(stack.api)
    response = await stack.api.post(f"/v1/conferences/{room}/participants",
                                    json={"to": "client:alice", "role": "agent", "label": "alice"})
    assert response.status_code == 202, response.text
    await stack.settle()
    await stack.set_faults(rest_error_rate=1.0, rest_error_status=400)
    refused = await stack.api.patch(f"/v1/conferences/{room}/participants/alice", json={"muted": True})
    assert refused.status_code == 502, refused.text
    await stack.set_faults(rest_error_rate=0.0)
    after = await scrape(stack.api)

    def delta(name: str, **labels: str) -> float:
        return difference(before, after, name, **labels)

    assert delta(REQUESTS, operation="create_participant", outcome="ok") == 1
    assert delta(REQUESTS, operation="update_participant", outcome="twilio_error") == 1
    assert delta("confctl_twilio_request_duration_seconds_count", operation="create_participant") == 1
    assert delta("confctl_twilio_callbacks_total", kind="conference-status", outcome="stored") >= 2


async def test_ended_transfers_and_stored_events_are_counters(stack: Stack) -> None:
    """A completed warm transfer and a cancelled one add 1 each to confctl_transfers_ended_total, and every
    event the conference stored is counted by type in confctl_events_stored_total."""
    _, room = await stack.inbound_call()
    before = await scrape(stack.api)
    response = await stack.api.post(f"/v1/conferences/{room}/participants",
                                    json={"to": "client:alice", "role": "agent", "label": "alice"})
    assert response.status_code == 202, response.text
    await stack.settle()
    # alice hands the customer to bob (completed; alice leaves), then bob tries carol and cancels
    for agent, target, finish in (("alice", "client:bob", "complete"), ("bob", "client:carol", "cancel")):
        started = await stack.api.post(f"/v1/conferences/{room}/transfers",
                                       json={"kind": "warm", "from": agent, "to": target, "label": target[7:]})
        assert started.status_code == 202, started.text
        await stack.settle()
        ended = await stack.api.post(f"/v1/transfers/{started.json()['id']}/{finish}")
        assert ended.status_code == 200, ended.text
        await stack.settle()
    after = await scrape(stack.api)

    def delta(name: str, **labels: str) -> float:
        return difference(before, after, name, **labels)

    assert delta("confctl_transfers_ended_total", outcome="completed") == 1
    assert delta("confctl_transfers_ended_total", outcome="cancelled") == 1
    assert delta("confctl_transfers_ended_total", outcome="failed") == 0
    events = await stack.events(room)
    requested = [e for e in events if e["type"] == "transfer.requested"]
    assert delta("confctl_events_stored_total", type="transfer.requested") == len(requested) == 2
    assert delta("confctl_events_stored_total", type="participant.joined") == sum(
        e["type"] == "participant.joined" for e in events) - 1  # the customer joined before `before`
