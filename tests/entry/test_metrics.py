"""GET /metrics: Prometheus text without an API key, counting requests, callbacks and live subscribers."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from confctl.entry.app import create_app
from tests.entry.conftest import KEYS, FixedClock, settings
from tests.support.metrics import scrape, value
from tests.support.sse import live_server, open_stream
from tests.support.twilio_forms import conference_event, post_signed, voice

CUSTOMER, CONF_SID = "CA" + "1" * 32, "CF" + "3" * 32
ROOM = f"room-{CUSTOMER}"


async def test_metrics_count_requests_by_route_and_callbacks_by_outcome(client: httpx.AsyncClient) -> None:
    """Requests count under their route template; callbacks as stored, duplicate, rejected (signature) or invalid."""
    before = await scrape(client)
    join = conference_event(ROOM, CONF_SID, 1, "participant-join", call_sid=CUSTOMER, label="customer")
    await post_signed(client, "/twilio/voice", voice(CUSTOMER).params)
    for _ in range(2):
        assert (await post_signed(client, join.path, join.params)).status_code == 204
    forged = await post_signed(client, join.path, join.params, token="not-the-token")
    assert forged.status_code == 403
    missing = {k: v for k, v in join.params.items() if k != "SequenceNumber"}
    assert (await post_signed(client, join.path, missing)).status_code == 400
    assert (await client.get(f"/v1/conferences/{ROOM}")).status_code == 200
    assert (await client.get("/v1/conferences/room-nope")).status_code == 404
    after = await scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    callbacks = "confctl_twilio_callbacks_total"
    assert delta(callbacks, kind="voice", outcome="stored") == 1
    assert delta(callbacks, kind="conference-status", outcome="stored") == 1
    assert delta(callbacks, kind="conference-status", outcome="duplicate") == 1
    assert delta(callbacks, kind="conference-status", outcome="rejected") == 1
    assert delta(callbacks, kind="conference-status", outcome="invalid") == 1
    requests = "confctl_http_requests_total"
    route = "/v1/conferences/{conference_id}"
    assert delta(requests, method="GET", route=route, status="200") == 1
    assert delta(requests, method="GET", route=route, status="404") == 1
    assert delta(requests, method="POST", route="/twilio/conference-status", status="204") == 2
    assert delta("confctl_http_request_duration_seconds_count", method="GET", route=route) == 2
    assert not any("room-" in dict(labels).get("route", "") for _, labels in after)  # templates, never raw paths


async def test_metrics_need_no_api_key_and_count_open_live_streams(engine: AsyncEngine) -> None:
    """/metrics answers without a key; the subscribers gauge counts open SSE streams and drops when they close."""
    app = create_app(settings(), engine=engine, clock=FixedClock())
    gauge = "confctl_sse_subscribers"
    try:
        async with live_server(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
            await post_signed(client, "/twilio/voice", voice(CUSTOMER).params)
            base = await scrape(client)
            admin = {"Authorization": f"Bearer {KEYS['reader']}"}
            async with open_stream(client, f"/v1/conferences/{ROOM}/stream", headers=admin) as feed, \
                    open_stream(client, "/v1/stream", headers=admin) as everything:
                await feed.events(1)
                await everything.events(1)
                during = await scrape(client)
                assert value(during, gauge, feed="conference") == value(base, gauge, feed="conference") + 1
                assert value(during, gauge, feed="all") == value(base, gauge, feed="all") + 1
            for _ in range(100):  # the server notices the closed connections a moment later
                now = await scrape(client)
                if value(now, gauge, feed="conference") == value(base, gauge, feed="conference") and \
                        value(now, gauge, feed="all") == value(base, gauge, feed="all"):
                    break
                await asyncio.sleep(0.02)
            else:
                raise AssertionError("the subscribers gauge did not drop after the streams closed")
    finally:
        await app.state.container.live.aclose()
