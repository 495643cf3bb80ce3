"""Bearer API keys with scopes: 401 without a valid key, 403 when the key lacks the scope."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from confctl.entry.errors import ApiProblem
from confctl.entry.settings import ApiKey, Scope

bearer = HTTPBearer(auto_error=False, description="An API key from CONFCTL_API_KEYS.")


def find_key(keys: list[ApiKey], presented: str) -> ApiKey | None:
    """The configured key matching `presented`, compared in constant time."""
    found = None
    for key in keys:
        if hmac.compare_digest(key.key.encode(), presented.encode()):
            found = key
    return found


async def authenticate(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> ApiKey:
    """The caller's API key (401 without a valid one); its name becomes the actor of its commands.

    Declared through the bearer scheme so the OpenAPI document (and /docs' Authorize button) knows it.
    """
    keys: list[ApiKey] = request.app.state.settings.api_keys
    key = find_key(keys, credentials.credentials) if credentials else None
    if key is None:
        raise ApiProblem(401, "unauthorized", "A valid API key is required (Authorization: Bearer <key>).",
                         {"WWW-Authenticate": "Bearer"})
    request.state.actor = key.name
    return key


def check_scope(key: ApiKey, scope: Scope) -> None:
    """403 when the key lacks the scope."""
    if scope not in key.scopes:
        raise ApiProblem(403, "forbidden", f"The API key {key.name!r} lacks the {scope!r} scope.")


def require(scope: Scope) -> Callable[[ApiKey], Awaitable[ApiKey]]:
    """A dependency that authenticates the caller and checks one scope; returns the API key."""

    async def dependency(key: Annotated[ApiKey, Depends(authenticate)]) -> ApiKey:
        check_scope(key, scope)
        return key

    return dependency
