"""`/simulator/docs` works with no internet, and `/simulator/openapi.json` is a valid document whose every
operation has an operationId and a typed 2xx answer, so generated clients get sane names."""

from __future__ import annotations

import re
from typing import Any

import httpx
from openapi_spec_validator import validate


async def test_simulator_docs_reference_only_local_urls_that_answer(client: httpx.AsyncClient) -> None:
    """The Swagger UI page names no external host; its script, styles, icon and document are served locally."""
    page = await client.get("/simulator/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert not re.search(r"https?://", page.text), "the page names an external host"
    urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text) + re.findall(
        r"""url:\s*["']([^"']+)["']""", page.text)
    assert "/simulator/openapi.json" in urls and len(urls) >= 4, urls
    for url in urls:
        assert url.startswith("/simulator/"), url
        assert (await client.get(url)).status_code == 200, url
    script = (await client.get(next(u for u in urls if u.endswith("swagger-ui-bundle.js")))).text
    assert "SwaggerUIBundle" in script
    assert (await client.get("/redoc")).status_code == 404  # ReDoc would load from a CDN


async def test_simulator_openapi_is_valid_and_every_operation_is_named_and_typed(client: httpx.AsyncClient) -> None:
    """openapi-spec-validator passes; each operation's id is its function's snake_case name, and each 2xx answer
    has a schema (the one 204 has no body by definition)."""
    spec: dict[str, Any] = (await client.get("/simulator/openapi.json")).json()
    validate(spec)
    ids = []
    for path, item in spec["paths"].items():
        assert path.startswith("/simulator/"), path  # the Twilio REST part is Twilio's own API
        for method, operation in item.items():
            ids.append(operation["operationId"])
            assert re.fullmatch(r"[a-z]+(_[a-z]+)*", operation["operationId"]), operation["operationId"]
            ok = {status: r for status, r in operation["responses"].items() if status.startswith("2")}
            assert ok, (method, path)
            for status, response in ok.items():
                if status == "204":
                    assert "content" not in response
                    continue
                schema = response["content"]["application/json"]["schema"]
                assert schema and schema != {}, (method, path, status)
                assert "$ref" in schema or "$ref" in str(schema.get("items", schema.get("additionalProperties"))), (
                    method, path, schema)
    assert {"create_inbound_call", "hang_up_call", "put_faults", "get_conference", "list_requests"} <= set(ids)
    assert len(ids) == len(set(ids))
    faults = spec["components"]["schemas"]["FaultSettings"]["properties"]
    assert {"callback_drop_rate", "callback_concurrency", "callback_early"} <= set(faults)
