"""Twilio request signatures, checked against the configured public URL (never the URL we were reached at)."""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from urllib.parse import urlparse

from twilio.request_validator import RequestValidator, add_port, remove_port


class SignatureChecker:
    """Validates `X-Twilio-Signature` over CONFCTL_PUBLIC_URL + path + query and every form field."""

    def __init__(self, auth_token: str, public_url: str) -> None:
        self._validator = RequestValidator(auth_token)
        self._public_url = public_url.rstrip("/")

    def url_for(self, path: str, query: str) -> str:
        """The URL Twilio signed: the public base, the path and the raw query string."""
        return f"{self._public_url}{path}" + (f"?{query}" if query else "")

    def is_valid(self, path: str, query: str, form: Mapping[str, Sequence[str]], signature: str | None) -> bool:
        """Whether the signature is Twilio's for this request.

        One HMAC over the URL as configured, which is what Twilio signs; only when that fails, the URL with
        (or without) its default port, which Twilio's signer has been known to use: twilio-python's
        `validate` always computes both.
        """
        if not signature:
            return False
        url = self.url_for(path, query)
        params = _MultiDict(form)
        if hmac.compare_digest(self._validator.compute_signature(url, params), signature):
            return True
        parsed = urlparse(url)
        other = remove_port(parsed) if parsed.port else add_port(parsed)
        return hmac.compare_digest(self._validator.compute_signature(other, params), signature)


class _MultiDict(dict[str, str]):
    """The `getall` interface twilio's validator uses for repeated form keys (sorted values)."""

    def __init__(self, form: Mapping[str, Sequence[str]]) -> None:
        super().__init__({k: v[0] for k, v in form.items() if v})
        self._all = {k: list(v) for k, v in form.items()}

    def getall(self, key: str) -> list[str]:
        return self._all.get(key, [])
