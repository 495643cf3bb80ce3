"""Webhook requests exactly as Twilio sends them: form-encoded, signed with `X-Twilio-Signature`.

The signature comes from twilio-python's own `RequestValidator.compute_signature`, so the service's
production check runs unchanged against the simulator.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit, urlunsplit

from twilio.request_validator import RequestValidator

from confctl.simulator.model.effects import Params


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    method: str
    url: str
    body: bytes | None
    headers: dict[str, str]


def webhook_request(auth_token: str, url: str, method: str, params: Params) -> WebhookRequest:
    """Build the signed request; the same object is re-sent as-is for a retry and for a duplicate delivery."""
    # Connection-override fragments (#rc=…) tune delivery and are not part of the signed URL: Twilio's
    # overrides page says so, and an HTTP request never carries a fragment anyway.
    # I-Twilio-Idempotency-Token is "a unique string that you can use to distinguish retry attempts"; whether
    # a retry keeps it is not said. A retry is the same request here, token included: receivers must not
    # rely on it either way (confctl dedupes on Twilio's own ids).
    parts = urlsplit(url)
    url = urlunsplit((parts.scheme, parts.netloc, parts.path, parts.query, ""))
    validator = RequestValidator(auth_token)
    headers = {
        "User-Agent": "TwilioProxy/1.1",
        "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
    }
    if method.upper() == "GET":
        separator = "&" if parts.query else "?"
        url = url + separator + urlencode(params) if params else url
        headers["X-Twilio-Signature"] = validator.compute_signature(url, {})
        return WebhookRequest("GET", url, None, headers)
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    headers["X-Twilio-Signature"] = validator.compute_signature(url, dict(params))
    return WebhookRequest("POST", url, urlencode(params).encode(), headers)
