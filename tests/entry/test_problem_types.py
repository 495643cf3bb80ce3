"""A problem's `type` is a URI under CONFCTL_PUBLIC_URL that resolves to a page confctl serves: every code's page
answers 200 with its title, status, when it happens and what to do; an unknown code is a 404 problem."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support.twilio_forms import PUBLIC_URL


async def codes_of(client: httpx.AsyncClient) -> list[str]:
    spec: dict[str, Any] = (await client.get("/openapi.json")).json()
    codes: list[str] = spec["components"]["schemas"]["Problem"]["properties"]["code"]["enum"]
    return codes


async def test_an_error_type_is_the_public_url_of_a_page_that_explains_it(client: httpx.AsyncClient) -> None:
    """A 404's `type` is {PUBLIC_URL}/problems/conference_not_found, and that path serves its page."""
    body = (await client.get("/v1/conferences/room-nowhere")).json()
    assert body["type"] == f"{PUBLIC_URL}/problems/conference_not_found"
    page = await client.get(urlsplit(body["type"]).path, headers={"Authorization": ""})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "Conference not found" in page.text and "404" in page.text


async def test_every_code_has_a_page(client: httpx.AsyncClient) -> None:
    """Each code of the Problem enum has an HTML page, with no external URL, that the index links to."""
    codes = await codes_of(client)
    index = await client.get("/problems", headers={"Authorization": ""})
    assert index.status_code == 200
    assert set(re.findall(r'href="problems/([a-z_]+)"', index.text)) == set(codes)
    for code in codes:
        page = await client.get(f"/problems/{code}", headers={"Authorization": ""})
        assert page.status_code == 200, code
        assert f"<code>{code}</code>" in page.text and "What to do" in page.text, code
        assert not re.search(r"https?://", page.text), code


@pytest.mark.parametrize("code", ["no_such_code", "Conference_Not_Found"])
async def test_an_unknown_code_is_a_404_problem(client: httpx.AsyncClient, code: str) -> None:
    """A code confctl never emits: 404 problem+json `not_found`, itself with a resolvable type."""
    response = await client.get(f"/problems/{code}")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "not_found"
    assert response.json()["type"] == f"{PUBLIC_URL}/problems/not_found"


async def test_a_webhook_problem_type_is_under_the_public_url_too(client: httpx.AsyncClient) -> None:
    """The Twilio webhooks' fast path answers problems with the same resolvable type."""
    response = await client.post("/twilio/voice", data={"CallSid": "CA" + "1" * 32})
    assert response.status_code == 403
    assert response.json()["type"] == f"{PUBLIC_URL}/problems/invalid_signature"
