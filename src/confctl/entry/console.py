"""The supervisor console: `GET /console` (a static page from the package) and its ES modules and style sheet,
plus the small index page at `GET /`.

The console is built only on confctl's public API and live stream, the calls any frontend could make: it signs
in with a browser token, lists conferences live from `/v1/stream` and controls them through `/v1`.
"""

from __future__ import annotations

import html

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse

from confctl.entry import pages

CONSOLE = pages.STATIC / "console"
# Only these files are served (session.js from static/shared/, the wallboard's too).
ASSETS = pages.allow_list(CONSOLE, ["app.js", "api.js", "drawing.js", "swimlane.js", "theme.js", "console.css"])

router = APIRouter(include_in_schema=False)  # pages, not API operations
INDEX_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; frame-ancestors 'none'"

INDEX = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="dark light">
<title>confctl</title>
<link rel="icon" href="data:,">
<style>
  body { font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; padding: 0 1rem; line-height: 1.5; }
  a { font-size: 1.2rem; }
  li { margin: 0.6rem 0; }
</style>
</head>
<body>
<main>
<h1>confctl</h1>
<p>Conference-call control for contact centers on Twilio.</p>
<ul>
  <li><a href="/console">Supervisor console</a>: live conferences, who hears whom, and the controls.</li>
  <li><a href="/wallboard">Wallboard</a>: live counts for a wall screen.</li>
  <li><a href="/docs">API documentation</a>: the interactive OpenAPI reference.</li>
</ul>
</main>
</body>
</html>
"""


@router.get("/")
async def index(request: Request) -> HTMLResponse:
    """Where a person who opens confctl's address lands: links to its pages."""
    # No script at all; its one inline style sheet is the only exception to the pages' policy.
    root = html.escape(pages.root_path(request), quote=True)  # behind a proxy's prefix, the links need it
    return HTMLResponse(INDEX.replace('href="/', f'href="{root}/'),
                        headers={**pages.PAGE_HEADERS, "Content-Security-Policy": INDEX_CSP})


@router.get("/console")
async def console_page(request: Request) -> HTMLResponse:
    """The console's HTML (it loads its modules and style below, and nothing from elsewhere), with the stream
    position it starts from."""
    return await pages.page(request, CONSOLE / "console.html")


@router.get("/console/{name}")
async def console_asset(name: str) -> FileResponse:
    """One of the console's scripts or its style sheet; anything else is a 404."""
    return pages.allowed_asset(ASSETS, "console", name)
