"""CORS for browser frontends on other origins: only those in CONFCTL_CORS_ORIGINS, and none by default.

With no origins configured the middleware is not installed at all, so no response carries a CORS header.
Twilio's webhooks are untouched either way: they carry no `Origin`, and Starlette's middleware passes such
requests straight through. Bearer tokens, not cookies, authenticate a browser, so credentials stay off.
"""

from __future__ import annotations

import re

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

# What a browser may send: the API's own request headers (Last-Event-ID: EventSource's reconnects).
ALLOWED_HEADERS = ["Authorization", "Content-Type", "Idempotency-Key", "Last-Event-ID", "X-Request-ID"]
# What a browser's script may read beyond the safelisted ones.
EXPOSED_HEADERS = ["Idempotent-Replayed", "Location", "Retry-After", "WWW-Authenticate", "X-Request-ID"]
ALLOWED_METHODS = ["GET", "POST", "PATCH", "DELETE"]
PREFLIGHT_MAX_AGE_S = 600

_ORIGIN = re.compile(r"^https?://[^/?#\s@]+$")


def check_origin(origin: str) -> str:
    """`origin` as browsers send it in `Origin` (scheme://host[:port], no trailing slash), or "*"; else ValueError.

    A trailing slash is dropped (a common way of writing a site's address); a path is refused, because a
    browser never sends one and the origin would silently never match.
    """
    value = origin.strip().rstrip("/")
    if value == "*" or _ORIGIN.match(value):
        return value
    raise ValueError(f"{origin!r} is not an origin: write scheme://host[:port] (e.g. https://app.example.com)")


def install(app: FastAPI, origins: list[str]) -> None:
    """Answer preflights and add CORS headers for `origins`; nothing at all when there are none."""
    if not origins:
        return
    app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=ALLOWED_METHODS,
                       allow_headers=ALLOWED_HEADERS, expose_headers=EXPOSED_HEADERS, allow_credentials=False,
                       max_age=PREFLIGHT_MAX_AGE_S)
