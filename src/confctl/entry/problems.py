"""The problem types: every `code` confctl answers with, and `GET /problems/{code}`, the page its `type` URI names.

A problem's `type` is `{CONFCTL_PUBLIC_URL}/problems/{code}` (RFC 9457: a URI that, dereferenced, documents the
problem type), so it resolves to the page below on the confctl that answered. `code` is the stable identifier
to branch on; the `type` URI follows the deployment's public URL.

The catalogue is the one list of codes: the OpenAPI document's `code` enum is built from it, and the test of the
document checks that every code the source can emit is in it. Domain codes take their status from
`errors.DOMAIN_STATUS`, so a status is stated once.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from confctl.domain import errors as de
from confctl.entry.errors import DOMAIN_STATUS, ApiProblem, problem_title


@dataclass(frozen=True, slots=True)
class ProblemType:
    """One problem type: its code, the statuses it comes with, when it happens and what to do about it."""

    code: str
    statuses: tuple[int, ...]
    when: str
    todo: str

    @property
    def title(self) -> str:
        return problem_title(self.code)


def _domain(error: type[de.DomainError], when: str, todo: str) -> ProblemType:
    return ProblemType(error.code, (DOMAIN_STATUS[error],), when, todo)


CATALOGUE: tuple[ProblemType, ...] = (
    _domain(de.ConferenceNotFound, "No conference has this id. A conference's id is its Twilio FriendlyName: "
            "`room-{CallSid}` for an inbound call.", "Check the id; `GET /v1/conferences` lists the conferences."),
    _domain(de.ParticipantNotFound, "No participant of this conference, live or past, has this label or CallSid.",
            "Read the conference (`GET /v1/conferences/{id}`) for its participants' labels."),
    _domain(de.TransferNotFound, "No transfer has this id.", "Use the `id` of a transfer the API returned."),
    _domain(de.ConferenceEnded, "The conference has ended: no command can change it any more.",
            "Nothing to retry; its history stays readable at `/v1/conferences/{id}/events`."),
    _domain(de.ParticipantNotConnected, "The command needs a joined leg (hold, mute, a coach target, an "
            "announcement target, a transfer's `from`, the customer) and this one is dialing, ringing or gone.",
            "Wait for `participant.joined` on the event stream, then send the command again."),
    _domain(de.TransferInProgress, "The conference already has an active transfer (one at a time).",
            "Complete or cancel that transfer first (`POST /v1/transfers/{id}/complete` or `/cancel`)."),
    _domain(de.InvalidTransition, "The transfer or recording is not in a state that allows this (completing a "
            "transfer that is not consulting, resuming a recording that is not paused, a repeat of a done command).",
            "Read the transfer or conference for its current state; a repeat needs no retry."),
    _domain(de.LabelTaken, "Another live participant of this conference has this label (Twilio's 16025/16026).",
            "Choose another label, or leave `label` out and confctl picks one."),
    _domain(de.CoachTargetNotConnected, "The agent named by `coach` is not a joined participant (Twilio's 16028).",
            "Coach an agent that has joined; wait for its `participant.joined`."),
    _domain(de.CoachTargetOnHold, "Twilio refuses to coach a participant on hold (16027).",
            "Take the agent off hold (`PATCH … {\"hold\": false}`), then switch to coach."),
    _domain(de.NotASupervisor, "`mode` or `coach` was given for a participant that is not a supervisor.",
            "Send `mode` and `coach` only for role `supervisor`."),
    _domain(de.InvalidAddress, "`to` or `fallback_to` is not an E.164 number (+15551234567), `client:NAME` or "
            "`sip:USER@HOST`.", "Send an address in one of those forms."),
    _domain(de.InvalidLabel, "The label is one Twilio refuses: over 128 characters, shaped like a CallSid, or with "
            "characters other than letters, digits, space and `_ . : @ + -` (Twilio's 16024).",
            "Choose a label within those rules."),
    ProblemType("invalid_request", (400, 413, 422), "A parameter or the body is not as the OpenAPI document says "
                "(422); on the Twilio webhooks, a field Twilio always sends is missing (400) or the body is too "
                "large (413).", "Compare the request with the operation in `/docs`; `detail` names the field."),
    ProblemType("idempotency_key_reused", (422,), "This Idempotency-Key was used before with another request.",
                "Use a new key for each distinct request; repeat a key only with the identical request."),
    ProblemType("idempotency_key_in_flight", (409,), "The first request with this Idempotency-Key is still "
                "running.", "Retry after the `Retry-After` seconds: the repeat then gets the first answer."),
    ProblemType("unauthorized", (401,), "No valid credential: `Authorization: Bearer` is missing, is not a "
                "configured API key or a valid browser token, or an API key was sent as `?access_token=`.",
                "Send `Authorization: Bearer <API key>` (keys come from CONFCTL_API_KEYS), or mint a browser "
                "token with `POST /v1/tokens`."),
    ProblemType("forbidden", (403,), "The API key or token lacks the scope this operation needs (`read`, "
                "`control`, `supervise`), or a browser token was used where an API key is needed.",
                "Use a key with the scope; `detail` names it."),
    ProblemType("invalid_signature", (403,), "A Twilio webhook without a valid `X-Twilio-Signature` (computed "
                "over CONFCTL_PUBLIC_URL and the auth token); nothing was stored.",
                "Make CONFCTL_PUBLIC_URL the URL Twilio calls and CONFCTL_TWILIO_AUTH_TOKEN the account's token."),
    ProblemType("twilio_error", (502,), "Twilio refused the request. `twilio_code` and `twilio_status` carry "
                "Twilio's own error code and HTTP status.",
                "Look the `twilio_code` up in Twilio's error reference; `detail` has Twilio's message."),
    ProblemType("twilio_unavailable", (503,), "Twilio could not be reached after the allowed retries, or no "
                "Twilio gateway is configured.", "Retry after the `Retry-After` seconds; pending steps are retried "
                "by confctl itself (see the conference's `pending_effects`)."),
    ProblemType("database_unavailable", (503,), "The database did not answer in time.",
                "Retry after the `Retry-After` seconds; `/readyz` says when the database is back."),
    ProblemType("voice_not_configured", (503,), "Twilio Voice access tokens need CONFCTL_TWILIO_API_KEY, "
                "CONFCTL_TWILIO_API_SECRET and CONFCTL_TWILIO_TWIML_APP_SID, and one of them is missing or "
                "malformed.", "Set those settings; `detail` names the one at fault."),
    ProblemType("not_found", (404,), "No operation has this path, or no problem type has this code.",
                "Check the path against `/docs`."),
    ProblemType("method_not_allowed", (405,), "The path exists but not with this method.",
                "Use one of the methods in the `Allow` header."),
    ProblemType("http_error", (), "Another HTTP-level refusal, with the status it names.",
                "Read `status` and `detail`."),
    ProblemType("internal_error", (500,), "An unexpected error in confctl; it has been logged.",
                "Retry; if it persists, report it with the time of the request."),
)

PROBLEM_TYPES: dict[str, ProblemType] = {p.code: p for p in CATALOGUE}
CODES: tuple[str, ...] = tuple(PROBLEM_TYPES)

router = APIRouter(tags=["operations"])

_STYLE = ("body{font-family:system-ui,sans-serif;max-width:44rem;margin:2rem auto;padding:0 1rem;line-height:1.5}"
          "code{background:#f3f3f3;padding:0 .2em}dt{font-weight:600;margin-top:1em}")


def _prose(text: str) -> str:
    """Escaped text, with `backticked` parts as code."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def _page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}'
                        f"</title><style>{_STYLE}</style></head><body>{body}</body></html>")


@router.get("/problems", operation_id="listProblemTypes", summary="Every problem type confctl answers with",
            response_class=HTMLResponse, responses={200: {"content": {"text/html": {}}}})
async def list_problem_types() -> HTMLResponse:
    """An HTML index of the problem types, each linked to its page."""
    rows = "".join(f'<li><a href="problems/{p.code}"><code>{p.code}</code></a>: {html.escape(p.title)}</li>'
                   for p in CATALOGUE)
    return _page("confctl problem types", f"<h1>confctl problem types</h1><ul>{rows}</ul>"
                                          '<p><a href="docs">API reference</a></p>')


@router.get("/problems/{code}", operation_id="getProblemType", summary="What a problem type means",
            response_class=HTMLResponse,
            responses={200: {"content": {"text/html": {}}, "description": "The problem type's page"},
                       404: {"description": "not_found: no problem type has this code"}})
async def get_problem_type(code: str) -> HTMLResponse:
    """The page a problem's `type` URI names: title, status, when it happens and what to do."""
    found = PROBLEM_TYPES.get(code)
    if found is None:
        raise ApiProblem(404, "not_found", f"no problem type {code!r}")
    statuses = ", ".join(str(s) for s in found.statuses) or "the one the answer names"
    return _page(f"{found.title} ({found.code})", (
        f"<h1>{html.escape(found.title)}</h1><dl><dt>code</dt><dd><code>{found.code}</code></dd>"
        f"<dt>HTTP status</dt><dd>{statuses}</dd><dt>When it happens</dt><dd>{_prose(found.when)}</dd>"
        f"<dt>What to do</dt><dd>{_prose(found.todo)}</dd></dl>"
        '<p><a href="../problems">All problem types</a> · <a href="../docs">API reference</a></p>'))
