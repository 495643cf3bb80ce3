"""Tokens for browsers (API.md §7): short-lived confctl tokens minted from an API key, and Twilio Voice access
tokens for an agent's softphone (`client:{identity}`).

A frontend's server holds the API key and mints a browser token for each page; the page uses it as
`Authorization: Bearer` and, for EventSource, as `?access_token=` on the SSE endpoints. Both answers carry
`Cache-Control: no-store`, as OAuth's token endpoint does: a credential must not sit in a cache.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Body, Depends, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, BeforeValidator, Field
from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import VoiceGrant

from confctl.domain.addresses import is_address
from confctl.entry import schemas
from confctl.entry.auth import authenticate_key, check_scope, require
from confctl.entry.browser_tokens import mint
from confctl.entry.errors import ApiProblem
from confctl.entry.settings import ApiKey, Scope, Settings

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/v1", tags=["browsers"])
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _integral(value: object) -> object:
    """JSON Schema's integer: 300.0 is one, which the strict request models would otherwise refuse."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


# At most Twilio's 24 h for a Voice access token; a browser token is cut down to CONFCTL_TOKEN_MAX_TTL_S.
Seconds = Annotated[int, Field(ge=1, le=86_400), BeforeValidator(_integral)]
VoiceSeconds = Annotated[int, Field(ge=60, le=86_400), BeforeValidator(_integral)]


class TokenRequest(BaseModel):
    """What a browser token may do and for how long (defaults: the key's scopes, CONFCTL_TOKEN_TTL_S)."""

    model_config = schemas.REQUEST

    scopes: list[Scope] | None = Field(default=None, min_length=1, examples=[["read"]])
    ttl_s: Seconds | None = Field(default=None, examples=[300], description=(
        "Seconds the token lives; a longer ask than CONFCTL_TOKEN_MAX_TTL_S (default 3600) is cut down to it: "
        "`expires_at` says when the token expires."))


class Token(BaseModel):
    """A browser token: `Authorization: Bearer <token>`, or `?access_token=<token>` on the SSE endpoints."""

    token: str
    expires_at: datetime
    scopes: list[Scope]


class VoiceTokenRequest(BaseModel):
    """How long the Voice access token lives (default CONFCTL_VOICE_TOKEN_TTL_S; Twilio allows 24 h at most)."""

    model_config = schemas.REQUEST

    ttl_s: VoiceSeconds | None = Field(default=None, examples=[3600])


class VoiceToken(BaseModel):
    """A Twilio Voice access token (JWT) for the Voice JavaScript SDK's `Device`, registered as `client:{identity}`."""

    token: str
    identity: str
    expires_at: datetime


def _problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    described = {401: "No valid API key or token", 403: "Lacks the scope, or a token where an API key is needed",
                 422: "Invalid request (invalid_request)",
                 503: "Voice access tokens are not configured (voice_not_configured)"}
    return {c: {"model": schemas.Problem, "description": described[c]} for c in (401, 403, *codes)}


def _at(unix_s: int) -> str:
    return datetime.fromtimestamp(unix_s, UTC).isoformat().replace("+00:00", "Z")


@router.post("/tokens", status_code=201, operation_id="createToken", summary="Mint a short-lived browser token",
             response_model=Token, responses=_problems(422))
async def create_token(request: Request, key: Annotated[ApiKey, Depends(authenticate_key)],
                       body: Annotated[TokenRequest | None, Body()] = None) -> JSONResponse:
    """`201` with a token for the caller's API key (its name is the actor of what the token does), with the
    scopes asked for (default: all of the key's; more than the key's is 403) for `ttl_s` seconds (at most
    CONFCTL_TOKEN_MAX_TTL_S). Only an API key mints: a browser token cannot."""
    settings: Settings = request.app.state.settings
    asked = body or TokenRequest()
    scopes = list(dict.fromkeys(asked.scopes)) if asked.scopes is not None else list(key.scopes)
    for scope in scopes:
        check_scope(key, scope)
    # Cut down, not refused: the most a token may live is the operator's setting, which no client can know.
    ttl_s = min(asked.ttl_s if asked.ttl_s is not None else settings.token_ttl_s, settings.token_max_ttl_s)
    minted = mint(key, scopes, ttl_s, time.time())
    log.info("auth.token.minted", key_name=key.name, scopes=scopes, ttl_s=ttl_s)
    return JSONResponse({"token": minted.token, "expires_at": _at(minted.expires_at), "scopes": minted.scopes},
                        status_code=201, headers=NO_STORE)


def _voice_settings(settings: Settings) -> tuple[str, str, str]:
    """(API key SID, its secret, TwiML app SID), or a 503 naming what to configure."""
    missing = [name for name, value in (("CONFCTL_TWILIO_API_KEY", settings.twilio_api_key),
                                        ("CONFCTL_TWILIO_API_SECRET", settings.twilio_api_secret),
                                        ("CONFCTL_TWILIO_TWIML_APP_SID", settings.twilio_twiml_app_sid)) if not value]
    if missing:
        raise ApiProblem(503, "voice_not_configured",
                         f"Voice access tokens need {', '.join(missing)}: an API key (SK…) and its secret from the "
                         "Twilio Console, and the TwiML app (AP…) whose Voice URL runs the softphone's calls.")
    # Twilio would refuse the softphone's token later (20103: invalid issuer): say it now.
    if not settings.twilio_api_key.startswith("SK"):
        raise ApiProblem(503, "voice_not_configured", "CONFCTL_TWILIO_API_KEY must be an API key SID (SK…)")
    if not settings.twilio_twiml_app_sid.startswith("AP"):
        raise ApiProblem(503, "voice_not_configured", "CONFCTL_TWILIO_TWIML_APP_SID must be a TwiML app SID (AP…)")
    return settings.twilio_api_key, settings.twilio_api_secret, settings.twilio_twiml_app_sid


IDENTITY_RULE = "1 to 121 letters, digits, _ . or - (the NAME of client:NAME)"
IDENTITY_PATTERN = r"^[A-Za-z0-9_.\-]{1,121}$"  # domain/addresses.py's client:NAME, checked again below


@router.post("/agents/{identity}/voice-token", status_code=201, operation_id="createVoiceToken",
             summary="Mint a Twilio Voice access token for an agent's softphone", response_model=VoiceToken,
             responses=_problems(422, 503))
async def create_voice_token(
    request: Request,
    identity: Annotated[str, Path(description=f"The softphone's client identity: {IDENTITY_RULE}.",
                                  pattern=IDENTITY_PATTERN, examples=["alice"])],
    key: Annotated[ApiKey, Depends(require("control"))],
    body: Annotated[VoiceTokenRequest | None, Body()] = None,
) -> JSONResponse:
    """`201` with a Twilio access token whose VoiceGrant lets the softphone receive calls to `client:{identity}`
    and place calls through CONFCTL_TWILIO_TWIML_APP_SID. Scope `control`; a browser token with it may ask."""
    # The same rule as a dialable client:NAME, so the agent this token registers can be dialed into a conference.
    if not is_address(f"client:{identity}"):
        raise ApiProblem(422, "invalid_request", f"identity must be {IDENTITY_RULE}")
    settings: Settings = request.app.state.settings
    api_key, api_secret, app_sid = _voice_settings(settings)
    ttl_s = body.ttl_s if body is not None and body.ttl_s is not None else settings.voice_token_ttl_s
    now = int(time.time())
    token = AccessToken(settings.twilio_account_sid, api_key, api_secret, identity=identity, nbf=now,
                        ttl=ttl_s, valid_until=now + ttl_s)
    token.add_grant(VoiceGrant(incoming_allow=True, outgoing_application_sid=app_sid))
    jwt: str = token.to_jwt()
    log.info("voice.token.minted", key_name=key.name, identity=identity, ttl_s=ttl_s)
    return JSONResponse({"token": jwt, "identity": identity, "expires_at": _at(now + ttl_s)}, status_code=201,
                        headers=NO_STORE)
