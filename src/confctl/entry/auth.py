"""Who is calling: an API key or a browser token (both `Authorization: Bearer`), or, on the SSE endpoints only, a
browser token as `?access_token=` (EventSource cannot send headers). 401 without a valid credential, 403 when
it lacks the scope. An API key is refused in a URL: URLs end up in logs, proxies and browser history."""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable
from typing import Annotated

import structlog
from fastapi import Depends, Request
from fastapi.security import APIKeyQuery, HTTPAuthorizationCredentials, HTTPBearer

from confctl.entry.browser_tokens import TokenRefused, looks_like_token, verify
from confctl.entry.errors import ApiProblem
from confctl.entry.settings import ApiKey, Scope

log = structlog.get_logger(__name__)

bearer = HTTPBearer(auto_error=False,
                    description="An API key from CONFCTL_API_KEYS, or a browser token from POST /v1/tokens.")
access_token_query = APIKeyQuery(
    name="access_token", auto_error=False, scheme_name="accessToken",
    description="A browser token from POST /v1/tokens, for EventSource (which cannot send headers). SSE "
                "endpoints only; an API key is refused here.")

CHALLENGE = {"WWW-Authenticate": "Bearer"}
INVALID_TOKEN = {"WWW-Authenticate": 'Bearer error="invalid_token"'}


def find_key(keys: list[ApiKey], presented: str) -> ApiKey | None:
    """The configured key matching `presented`, compared in constant time."""
    found = None
    for key in keys:
        if hmac.compare_digest(key.key.encode(), presented.encode()):
            found = key
    return found


def _from_token(request: Request, presented: str) -> ApiKey:
    """The minting key, with the token's scopes, for a valid browser token; else 401."""
    try:
        key, _ = verify(presented, request.app.state.settings.api_keys, time.time())
    except TokenRefused as refused:
        raise ApiProblem(401, "unauthorized", refused.detail, INVALID_TOKEN) from None
    request.state.actor = key.name
    request.state.credential = "token"
    return key


async def authenticate(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> ApiKey:
    """The caller's API key (401 without a valid one), or for a browser token the key that minted it with the
    token's scopes; the key's name becomes the actor of its commands.

    Declared through the bearer scheme so the OpenAPI document (and /docs' Authorize button) knows it.
    """
    keys: list[ApiKey] = request.app.state.settings.api_keys
    key = find_key(keys, credentials.credentials) if credentials else None
    if key is None:
        if credentials and looks_like_token(credentials.credentials):
            return _from_token(request, credentials.credentials)
        raise ApiProblem(401, "unauthorized", "A valid API key is required (Authorization: Bearer <key>).",
                         CHALLENGE)
    request.state.actor = key.name
    request.state.credential = "api_key"
    return key


async def authenticate_key(request: Request, caller: Annotated[ApiKey, Depends(authenticate)]) -> ApiKey:
    """The caller's API key itself: a browser token is refused (403), so no token can outlive its own expiry by
    minting the next one."""
    if request.state.credential != "api_key":
        raise ApiProblem(403, "forbidden", "Browser tokens cannot mint tokens: use an API key.")
    return caller


async def authenticate_stream(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    access_token: Annotated[str | None, Depends(access_token_query)],
) -> ApiKey:
    """As `authenticate`, or a browser token in `?access_token=` (which wins over the header when both come)."""
    if access_token is None:
        return await authenticate(request, credentials)
    leaked = find_key(request.app.state.settings.api_keys, access_token)
    if leaked is not None:
        log.warning("auth.api_key_in_url", key_name=leaked.name, path=request.url.path,
                    hint="an API key was sent in a URL: rotate it")
        raise ApiProblem(401, "unauthorized",
                         "An API key is refused in a URL (URLs are logged and kept in browser history): mint a "
                         "short-lived token with POST /v1/tokens and pass that as access_token. Rotate this key.",
                         INVALID_TOKEN)
    return _from_token(request, access_token)


def check_scope(key: ApiKey, scope: Scope) -> None:
    """403 when the key (or the browser token) lacks the scope."""
    if scope not in key.scopes:
        raise ApiProblem(403, "forbidden", f"The API key {key.name!r} lacks the {scope!r} scope.")


def require(scope: Scope) -> Callable[[ApiKey], Awaitable[ApiKey]]:
    """A dependency that authenticates the caller and checks one scope; returns the API key."""

    async def dependency(key: Annotated[ApiKey, Depends(authenticate)]) -> ApiKey:
        check_scope(key, scope)
        return key

    return dependency


def require_on_stream(scope: Scope) -> Callable[[ApiKey], Awaitable[ApiKey]]:
    """As `require`, for the SSE endpoints: the caller may also come with `?access_token=`."""

    async def dependency(key: Annotated[ApiKey, Depends(authenticate_stream)]) -> ApiKey:
        check_scope(key, scope)
        return key

    return dependency
