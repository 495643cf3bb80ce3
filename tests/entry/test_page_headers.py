"""The browser pages (console, wallboard, index) say what they may load: a Content-Security-Policy that allows
only confctl's own scripts, styles and connections, no sniffing, no referrer, and no caching of the HTML (it
carries the stream position it was served at)."""

from __future__ import annotations

import httpx
import pytest

from confctl.entry import wallboard
from confctl.entry.console import ASSETS


def _directives(policy: str) -> dict[str, list[str]]:
    parts = (d.split() for d in policy.split(";") if d.strip())
    return {d[0]: d[1:] for d in parts}


@pytest.mark.parametrize("path", ["/console", "/wallboard"])
async def test_pages_allow_only_their_own_scripts_styles_and_connections(client: httpx.AsyncClient,
                                                                        path: str) -> None:
    """No inline script or style, nothing from another origin, no framing, no caching of the HTML."""
    response = await client.get(path, headers={"Authorization": ""})
    assert response.status_code == 200
    policy = _directives(response.headers["content-security-policy"])
    assert policy["default-src"] == ["'none'"]
    for directive in ("script-src", "style-src", "connect-src"):
        assert policy[directive] == ["'self'"], directive
    assert policy["frame-ancestors"] == ["'none'"] and policy["base-uri"] == ["'none'"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"


async def test_the_index_has_no_script_at_all(client: httpx.AsyncClient) -> None:
    """`/` is links and one inline style sheet: its policy allows that style and no script whatsoever."""
    response = await client.get("/", headers={"Authorization": ""})
    policy = _directives(response.headers["content-security-policy"])
    assert "script-src" not in policy and policy["default-src"] == ["'none'"]
    assert "<script" not in response.text


@pytest.mark.parametrize("path", [*(f"/console/{name}" for name in sorted(ASSETS)),
                                  *(f"/wallboard/{name}" for name in sorted(wallboard.ASSETS))])
async def test_assets_are_not_sniffed_and_are_revalidated(client: httpx.AsyncClient, path: str) -> None:
    """Scripts and styles keep their declared type and are revalidated (ETag), so an upgrade is picked up."""
    response = await client.get(path, headers={"Authorization": ""})
    assert response.status_code == 200, path
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-cache" and response.headers.get("etag")
