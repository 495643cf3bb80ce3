"""The console's and the wallboard's pages and assets: served from the package at /console and /wallboard (the
module both import, session.js, beside each page's own), with nothing loaded from elsewhere, and the index page at
`/` that links to the pages; none of them is an API operation in /openapi.json."""

from __future__ import annotations

import re

import httpx
import pytest

from confctl.domain.events import EVENT_TYPES
from confctl.entry import pages, wallboard
from confctl.entry.console import ASSETS

TYPES = {"js": "text/javascript", "css": "text/css"}
# XML namespace names are identifiers that are never fetched (createElementNS needs the SVG one).
NAMESPACES = {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink", "http://www.w3.org/1999/xhtml"}
# An absolute or protocol-relative URL in markup, CSS or a string: `"//cdn…"`, `url(//cdn…)`, `src=//cdn…`.
PROTOCOL_RELATIVE = re.compile(r"""(?:["'`(=]\s*)//[A-Za-z0-9]""")


async def test_console_page_is_served_with_its_stream_position(client: httpx.AsyncClient) -> None:
    """`/console` is the console's HTML, with no key needed, its body carrying the stream position to follow
    from, and it loads its module and style sheet from /console."""
    page = await client.get("/console", headers={"Authorization": ""})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert re.search(r'<body data-after="-?\d+" data-root="" data-event-types="[a-z_. ]+">', page.text), page.text[:300]
    assert '<script type="module" src="console/app.js"></script>' in page.text
    assert 'href="console/console.css"' in page.text


@pytest.mark.parametrize("name", sorted(ASSETS))
async def test_every_asset_is_served_with_its_content_type(client: httpx.AsyncClient, name: str) -> None:
    """Each allow-listed file answers 200 with its content type and the file's bytes."""
    response = await client.get(f"/console/{name}", headers={"Authorization": ""})
    assert response.status_code == 200, name
    assert response.headers["content-type"].startswith(TYPES[name.rsplit(".", 1)[1]]), response.headers
    assert response.content == ASSETS[name].read_bytes()


async def test_the_wallboard_page_loads_its_module(client: httpx.AsyncClient) -> None:
    """`/wallboard` loads its script as an ES module (it imports session.js) and its style sheet, both relative."""
    page = await client.get("/wallboard", headers={"Authorization": ""})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="wallboard/wallboard.js"></script>' in page.text
    assert 'href="wallboard/wallboard.css"' in page.text
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page.text), "an inline script"


@pytest.mark.parametrize("name", sorted(wallboard.ASSETS))
async def test_every_wallboard_asset_is_served_with_its_content_type(client: httpx.AsyncClient, name: str) -> None:
    """Each of the wallboard's allow-listed files answers 200 with its content type and the file's bytes."""
    response = await client.get(f"/wallboard/{name}", headers={"Authorization": ""})
    assert response.status_code == 200, name
    assert response.headers["content-type"].startswith(TYPES[name.rsplit(".", 1)[1]]), response.headers
    assert response.content == wallboard.ASSETS[name].read_bytes()


async def test_both_pages_serve_the_one_shared_module(client: httpx.AsyncClient) -> None:
    """session.js (sign-in, the stream, the re-reads) is one file, served beside each page's scripts, and each
    page's script imports it by a relative URL."""
    console = await client.get("/console/session.js")
    board = await client.get("/wallboard/session.js")
    assert console.status_code == board.status_code == 200
    assert console.content == board.content and b"export function createSession" in console.content
    for path in ("/console/app.js", "/console/api.js", "/wallboard/wallboard.js"):
        assert 'from "./session.js";' in (await client.get(path)).text, path


@pytest.mark.parametrize("path", [
    *(f"/console/{name}" for name in ["console.html", "nope.js", "..%2Fwallboard.js", "%2E%2E%2Fapp.py", "App.js",
                                      "..%2Fshared%2Fsession.js"]),
    *(f"/wallboard/{name}" for name in ["wallboard.html", "app.js", "..%2Fwallboard.py", "Session.js"]),
])
async def test_anything_else_under_a_page_is_a_404(client: httpx.AsyncClient, path: str) -> None:
    """A file not on the page's allow-list is a 404, whatever its name (nothing is joined onto the folder)."""
    response = await client.get(path, headers={"Authorization": ""})
    assert response.status_code == 404, (path, response.text)


async def test_no_asset_names_an_external_url(client: httpx.AsyncClient) -> None:
    """No http://, https:// or protocol-relative URL in the pages or any asset: no CDN, nothing from elsewhere."""
    texts = {page: (await client.get(page)).text for page in ("/console", "/wallboard")}
    for name in ASSETS:
        texts[f"/console/{name}"] = (await client.get(f"/console/{name}")).text
    for name in wallboard.ASSETS:
        texts[f"/wallboard/{name}"] = (await client.get(f"/wallboard/{name}")).text
    for name, text in texts.items():
        absolute = set(re.findall(r"https?://[^\s\"'`)<>]+", text)) - NAMESPACES
        assert not absolute, (name, absolute)
        assert not PROTOCOL_RELATIVE.search(text), (name, PROTOCOL_RELATIVE.search(text))


async def test_the_index_links_to_the_pages(client: httpx.AsyncClient) -> None:
    """`/` is a small HTML page linking the console, the wallboard and the API docs, each of which answers."""
    index = await client.get("/", headers={"Authorization": ""})
    assert index.status_code == 200 and index.headers["content-type"].startswith("text/html")
    links = re.findall(r'href="([^"]+)"', index.text)
    assert {"/console", "/wallboard", "/docs"} <= set(links), links
    for link in ("/console", "/wallboard", "/docs"):
        assert (await client.get(link, headers={"Authorization": ""})).status_code == 200, link


async def test_pages_are_not_api_operations(client: httpx.AsyncClient) -> None:
    """The pages and their assets are not in the OpenAPI document (they are not part of the API)."""
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert not [p for p in paths if p == "/" or p.startswith(("/console", "/wallboard"))], sorted(paths)


async def test_a_forced_theme_is_set_by_a_classic_script_in_the_head(client: httpx.AsyncClient) -> None:
    """theme.js, a classic (parser-blocking) script in <head> ahead of the module, sets the forced theme before
    the first paint; the page has no inline script (its policy allows none)."""
    page = (await client.get("/console")).text
    head = page.split("</head>", 1)[0]
    assert '<script src="console/theme.js"></script>' in head, head
    assert head.index("console/theme.js") < head.index("console/console.css") < head.index("console/app.js")
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page), "an inline script"
    theme = ASSETS["theme.js"].read_text(encoding="utf-8")
    assert "confctl.console.theme" in theme and "import" not in theme and "export" not in theme


@pytest.mark.parametrize("path", ["/console", "/wallboard"])
async def test_pages_are_told_every_event_type_the_stream_carries(client: httpx.AsyncClient, path: str) -> None:
    """The page listens to the SSE event names it was served with: every stored event type (announcements and
    command outcomes included), from the one registry, and no copy of the list sits in the scripts."""
    page = (await client.get(path, headers={"Authorization": ""})).text
    found = re.search(r'data-event-types="([^"]*)"', page)
    assert found, page[:300]
    assert set(found[1].split()) == set(EVENT_TYPES)
    assert {"announcement.played", "command.failed", "transfer.completed"} <= set(EVENT_TYPES)
    scripts = [p.read_text() for p in pages.STATIC.rglob("*.js")]
    assert len(scripts) >= 7, "the pages' scripts"
    assert not any('"participant.joined"' in text for text in scripts), "a hard-coded copy of the event types"
