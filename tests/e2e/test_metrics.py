"""Twilio REST operations show on /metrics by operation and outcome, through the whole stack."""

from __future__ import annotations

from tests.e2e.conftest import Stack
from tests.support.metrics import scrape, value

REQUESTS = "confctl_twilio_requests_total"


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
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta(REQUESTS, operation="create_participant", outcome="ok") == 1
    assert delta(REQUESTS, operation="update_participant", outcome="twilio_error") == 1
    assert delta("confctl_twilio_request_duration_seconds_count", operation="create_participant") == 1
    assert delta("confctl_twilio_callbacks_total", kind="conference-status", outcome="stored") >= 2
