"""Twilio request signatures, checked against the configured public URL (never the URL we were reached at)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from twilio.request_validator import RequestValidator


class SignatureChecker:
    """Validates `X-Twilio-Signature` over CONFCTL_PUBLIC_URL + path + query and every form field."""

    def __init__(self, auth_token: str, public_url: str) -> None:
        self._validator = RequestValidator(auth_token)
        self._public_url = public_url.rstrip("/")

    def url_for(self, path: str, query: str) -> str:
        """The URL Twilio signed: the public base, the path and the raw query string."""
        return f"{self._public_url}{path}" + (f"?{query}" if query else "")

    def is_valid(self, path: str, query: str, form: Mapping[str, Sequence[str]], signature: str | None) -> bool:
        """Whether the signature is Twilio's for this request."""
        if not signature:
            return False
        return bool(self._validator.validate(self.url_for(path, query), _MultiDict(form), signature))


class _MultiDict(dict[str, str]):
    """The `getall` interface twilio's validator uses for repeated form keys (sorted values)."""

    def __init__(self, form: Mapping[str, Sequence[str]]) -> None:
        super().__init__({k: v[0] for k, v in form.items() if v})
        self._all = {k: list(v) for k, v in form.items()}

    def getall(self, key: str) -> list[str]:
        return self._all.get(key, [])
