"""Signatures of webhooks whose URL carried connection overrides: Twilio signs the URL without the fragment.

Twilio's connection-overrides page: the fragment is not part of the signed URL (shared/twilio/webhooks.md §e);
an HTTP client never sends a fragment either, so the URL a request arrives at has none. twilio-python's
`RequestValidator` is the reference for computing the signature.
"""

from __future__ import annotations

from twilio.request_validator import RequestValidator

from confctl.adapters.signature import SignatureChecker
from confctl.service.webhook_urls import WebhookUrls

TOKEN = "signing-token-123"
PUBLIC = "https://confctl.example.com"
FORM = {"CallSid": "CA1", "StatusCallbackEvent": "participant-join", "SequenceNumber": "1"}


def _as_lists(form: dict[str, str]) -> dict[str, list[str]]:
    return {k: [v] for k, v in form.items()}


def test_a_signature_over_the_url_without_its_fragment_is_accepted() -> None:
    """For a callback URL handed out with `#…` overrides, Twilio's signature (computed without them) passes."""
    handed_out = WebhookUrls(PUBLIC).call_status("room-CA9", "agent")
    signed_url = handed_out.split("#", 1)[0]
    signature = RequestValidator(TOKEN).compute_signature(signed_url, FORM)
    checker = SignatureChecker(TOKEN, PUBLIC)
    assert checker.is_valid("/twilio/call-status", "conference_id=room-CA9&label=agent", _as_lists(FORM), signature)


def test_a_signature_over_the_url_with_its_fragment_is_not_twilios() -> None:
    """A signature that covers the fragment is not one Twilio makes: refused like any other wrong signature."""
    handed_out = WebhookUrls(PUBLIC).conference_status()
    assert "#" in handed_out
    signature = RequestValidator(TOKEN).compute_signature(handed_out, FORM)
    checker = SignatureChecker(TOKEN, PUBLIC)
    assert not checker.is_valid("/twilio/conference-status", "", _as_lists(FORM), signature)
