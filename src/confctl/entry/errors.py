"""Problem+json (RFC 9457) for every error: domain errors, validation, auth, Twilio failures, the unexpected."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from confctl.domain import errors as de
from confctl.domain.addresses import check_address
from confctl.domain.labels import label_problem
from confctl.service.gateway import TwilioError, TwilioUnavailable
from confctl.service.outage import StoreUnavailable

log = structlog.get_logger(__name__)

# A problem's `type` is the page describing it, served by confctl itself (problems.py). Before v1.1 it was
# https://confctl.dev/problems/{code}, a host nobody serves: the path part, and `code`, are unchanged.
PROBLEM_PATH = "/problems/"

DOMAIN_STATUS: dict[type[de.DomainError], int] = {
    de.ConferenceNotFound: 404,
    de.ParticipantNotFound: 404,
    de.TransferNotFound: 404,
    de.ConferenceEnded: 409,
    de.ParticipantNotConnected: 409,
    de.TransferInProgress: 409,
    de.InvalidTransition: 409,
    de.LabelTaken: 409,
    de.CoachTargetNotConnected: 409,
    de.CoachTargetOnHold: 409,
    de.NotASupervisor: 422,
    de.InvalidAddress: 422,
    de.InvalidLabel: 422,
    de.InvalidRequest: 422,
}


class ApiProblem(Exception):
    """An HTTP-level problem raised by the entry layer itself (auth, bad request, idempotency)."""

    def __init__(self, status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers


def problem_title(code: str) -> str:
    """The same title for every occurrence of a problem type (RFC 9457), its code in words."""
    return code.replace("_", " ").capitalize()


def problem_type(code: str, base: str = "") -> str:
    """The URI of the problem type's page: under `base` (CONFCTL_PUBLIC_URL), else relative to this server."""
    return base.rstrip("/") + PROBLEM_PATH + code


def problem_body(status: int, code: str, detail: str, *, base: str = "", **extra: Any) -> dict[str, Any]:
    """The JSON of a problem (RFC 9457); `base` is the public URL its `type` is under."""
    return {
        "type": problem_type(code, base),
        "title": problem_title(code),
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
    }


def problem(status: int, code: str, detail: str, headers: dict[str, str] | None = None, *, base: str = "",
            **extra: Any) -> JSONResponse:
    """A problem+json response."""
    return JSONResponse(problem_body(status, code, detail, base=base, **extra), status_code=status,
                        media_type="application/problem+json", headers=headers)


def public_base(request: Request) -> str:
    """Where this app's problem type pages are, as the outside world reaches them (CONFCTL_PUBLIC_URL)."""
    settings = getattr(request.app.state, "settings", None)
    return str(getattr(settings, "public_url", ""))


ADDRESS_FIELDS = frozenset({"to", "fallback_to"})


def _about_an_address(error: Any) -> bool:
    """A validation error that API.md calls `invalid_address`: an address field not in a dialable form."""
    loc = error.get("loc", ())
    pattern = error.get("type") == "string_pattern_mismatch" and bool(loc) and loc[-1] in ADDRESS_FIELDS
    return pattern or "address" in str(error.get("msg", ""))


def _address_detail(error: Any) -> str:
    """The domain's own words for an address it would refuse (not the schema's long pattern)."""
    field = str(error.get("loc", ("to",))[-1])
    try:
        check_address(str(error.get("input", "")), field)
    except de.InvalidAddress as exc:
        return exc.detail
    return _validation_detail_of([error])


# Body fields that hold a label: a new one (`label`) or one naming a participant (`coach`, a transfer's `from`).
LABEL_FIELDS = frozenset({"label", "coach", "from"})
_LABEL_ERRORS = frozenset({"string_pattern_mismatch", "string_too_short", "string_too_long", "value_error"})


def _about_a_label(error: Any) -> bool:
    """A validation error that API.md calls `invalid_label`: a string that cannot be a participant's label."""
    loc = error.get("loc", ())
    return len(loc) == 2 and loc[0] == "body" and loc[-1] in LABEL_FIELDS and error.get("type") in _LABEL_ERRORS


def _label_detail(error: Any) -> str:
    """The domain's words for a label Twilio would refuse, else what confctl's narrower pattern allows."""
    field = str(error["loc"][-1])
    value = error.get("input")
    problem = label_problem(value) if isinstance(value, str) else None
    if problem is None and error.get("type") == "string_pattern_mismatch":
        problem = "may hold only letters, digits, space and _ . : @ + -"
    return f"{field} {problem}" if problem else _validation_detail_of([error])


# Twilio refusals with an answer of their own: a precondition lost to a race (the agent was put on hold after
# confctl checked), or an account setting the operator has to change.
TWILIO_CODES: dict[int, tuple[int, str]] = {16027: (409, "coach_target_on_hold")}
TWILIO_HINTS: dict[int, str] = {
    16000: "Coaching needs Twilio's Agent Conference: enable Agent Conference in the Twilio Console's Voice "
           "conference settings page.",
}


def twilio_detail(exc: TwilioError) -> str:
    """Twilio's code and message, and what to do about it when that is known."""
    hint = TWILIO_HINTS.get(exc.code) if exc.code is not None else None
    detail = f"Twilio error {exc.code}: {exc.message}"
    return f"{detail.rstrip('.')}. {hint}" if hint else detail


def _validation_detail(exc: RequestValidationError) -> str:
    return _validation_detail_of(exc.errors())


def _validation_detail_of(errors: Any) -> str:
    parts = []
    for error in list(errors)[:5]:
        where = ".".join(str(x) for x in error.get("loc", ()) if x != "body")
        parts.append(f"{where}: {error.get('msg')}" if where else str(error.get("msg")))
    return "; ".join(parts) or "invalid request"


# The code of an HTTP-level error that Starlette raises (no route, no such method), by status.
HTTP_CODES: dict[int, str] = {404: "not_found", 405: "method_not_allowed"}

HTTP_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE")


def allowed_methods(request: Request) -> str:
    """The `Allow` of a 405 (RFC 9110): every method some route serves on this path.

    Starlette names only those of the first route whose path matched, and each method of a path is a route
    of its own here (GET, PATCH and DELETE of a participant): so each method is tried against the routes.
    """
    routes = request.app.router.routes
    return ", ".join(m for m in HTTP_METHODS
                     if any(r.matches({**request.scope, "method": m})[0] == Match.FULL for r in routes))


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into problem+json."""

    @app.exception_handler(de.DomainError)
    async def on_domain(request: Request, exc: de.DomainError) -> JSONResponse:
        return problem(DOMAIN_STATUS.get(type(exc), 409), exc.code, exc.detail, base=public_base(request))

    @app.exception_handler(ApiProblem)
    async def on_api(request: Request, exc: ApiProblem) -> JSONResponse:
        return problem(exc.status, exc.code, exc.detail, exc.headers, base=public_base(request))

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        base = public_base(request)
        address = next((e for e in exc.errors() if _about_an_address(e)), None)
        if address is not None:
            return problem(422, "invalid_address", _address_detail(address), base=base)
        label = next((e for e in exc.errors() if _about_a_label(e)), None)
        if label is not None:
            return problem(422, "invalid_label", _label_detail(label), base=base)
        return problem(422, "invalid_request", _validation_detail(exc), base=base)

    @app.exception_handler(TwilioError)
    async def on_twilio(request: Request, exc: TwilioError) -> JSONResponse:
        status, code = TWILIO_CODES.get(exc.code, (502, "twilio_error")) if exc.code is not None \
            else (502, "twilio_error")
        return problem(status, code, twilio_detail(exc), base=public_base(request), twilio_code=exc.code,
                       twilio_status=exc.status)

    @app.exception_handler(TwilioUnavailable)
    async def on_unavailable(request: Request, exc: TwilioUnavailable) -> JSONResponse:
        return problem(503, "twilio_unavailable", f"Twilio could not be reached: {exc}", {"Retry-After": "5"},
                       base=public_base(request))

    @app.exception_handler(StoreUnavailable)
    async def on_store_unavailable(request: Request, exc: StoreUnavailable) -> JSONResponse:
        log.warning("store.unavailable", error=str(exc))
        return problem(503, "database_unavailable", "The database is unavailable; try again shortly.",
                       {"Retry-After": "2"}, base=public_base(request))

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        base = public_base(request)
        if exc.status_code == 400:
            # FastAPI's answer to a body it could not even decode (not UTF-8): to the client, the same as
            # malformed JSON, which FastAPI itself reports as a validation error.
            return problem(422, "invalid_request", f"the body could not be read: {exc.detail}", base=base)
        code = HTTP_CODES.get(exc.status_code, "http_error")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = allowed_methods(request)
        return problem(exc.status_code, code, str(exc.detail), headers, base=base)

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("http.unhandled", path=request.url.path)
        return problem(500, "internal_error", "An unexpected error occurred; it has been logged.",
                       base=public_base(request))
