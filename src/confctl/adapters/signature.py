"""Twilio request signatures, checked against the configured public URL (never the URL we were reached at).

Twilio's algorithm (https://www.twilio.com/docs/usage/security#validating-requests): HMAC-SHA1, keyed with the
auth token, over the full URL followed by every POST field's name and value, the fields sorted by name (and a
repeated field's values sorted), base64-encoded. It is computed here once per request, as twilio-python's
`RequestValidator.compute_signature` does it (a test holds the two equal on arbitrary forms); its `validate`
always computes it twice (with and without the URL's default port), which this does only when the first fails.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from urllib.parse import urlparse

from twilio.request_validator import add_port, remove_port


def compute_signature(token: bytes, url: str, form: Mapping[str, Sequence[str]]) -> str:
    """Twilio's X-Twilio-Signature of a POST of `form` to `url`."""
    parts = [url]
    for name in sorted(form):
        for value in sorted(set(form[name])):
            parts.append(name)
            parts.append(value)
    digest = hmac.new(token, "".join(parts).encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


class SignatureChecker:
    """Validates `X-Twilio-Signature` over CONFCTL_PUBLIC_URL + path + query and every form field."""

    def __init__(self, auth_token: str, public_url: str) -> None:
        self._token = auth_token.encode("utf-8")
        self._public_url = public_url.rstrip("/")

    def url_for(self, path: str, query: str) -> str:
        """The URL Twilio signed: the public base, the path and the raw query string."""
        return f"{self._public_url}{path}" + (f"?{query}" if query else "")

    def is_valid(self, path: str, query: str, form: Mapping[str, Sequence[str]], signature: str | None) -> bool:
        """Whether the signature is Twilio's for this request: over the URL as configured, which is what Twilio
        signs, or else over the same URL with (or without) its default port, which Twilio's signer has been
        known to use."""
        if not signature:
            return False
        given = signature.encode("utf-8", "replace")  # bytes: compare_digest refuses non-ASCII str
        url = self.url_for(path, query)
        if hmac.compare_digest(compute_signature(self._token, url, form).encode(), given):
            return True
        parsed = urlparse(url)
        other = remove_port(parsed) if parsed.port else add_port(parsed)
        return hmac.compare_digest(compute_signature(self._token, other, form).encode(), given)
