"""GET /docs works with no internet: the page and everything it loads come from confctl itself."""

from __future__ import annotations

import re

import httpx


async def test_docs_reference_only_local_urls_that_answer(client: httpx.AsyncClient) -> None:
    """Every URL in the Swagger UI page is on this server and answers 200; the OpenAPI it loads is ours."""
    page = await client.get("/docs", headers={"Authorization": ""})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text) + re.findall(
        r"""url:\s*["']([^"']+)["']""", page.text)
    assert len(urls) >= 4, urls  # css, icon, script, openapi
    assert not re.search(r"https?://", page.text), "the page names an external host"
    for url in urls:
        assert url.startswith("/"), url
        response = await client.get(url, headers={"Authorization": ""})
        assert response.status_code == 200, url
    assert "/openapi.json" in urls
    assert any(url.endswith("swagger-ui-bundle.js") for url in urls)
    script = (await client.get(next(u for u in urls if u.endswith(".js")))).text
    assert "SwaggerUIBundle" in script and len(script) > 100_000


async def test_redoc_is_not_served(client: httpx.AsyncClient) -> None:
    """ReDoc would load from a CDN, so it is off: /redoc is a 404."""
    assert (await client.get("/redoc")).status_code == 404
