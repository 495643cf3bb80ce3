"""Secrets kept out of log lines: the configured ones by value, and any in the shapes secrets travel in.

confctl never logs a credential on purpose; this is the second line of defence, run on every field of
every record just before it is rendered. It knows the configured secrets by value (the Twilio auth token and
API secret, every API key, the database password) and recognises the shapes secrets come in wherever they
come from: `Authorization`-style `Bearer`/`Basic` credentials, a URL's password, a query parameter such as
`access_token=`, a JWT (the browser tokens), and fields named like a secret (`password`, `authorization`, …).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from structlog.types import EventDict, WrappedLogger

REDACTED = "[REDACTED]"
# Shorter values are not treated as secrets by value: redacting every "postgres" would garble the lines that
# name the database driver. Their shapes (a URL's password, a Bearer credential) are still redacted.
MIN_SECRET_LENGTH = 8
SECRET_FIELDS = frozenset({
    "authorization", "proxy-authorization", "cookie", "set-cookie", "password", "passwd", "secret", "token",
    "access_token", "auth_token", "api_key", "api_secret", "x-twilio-signature", "signature",
})
_QUERY_NAMES = r"access_token|token|auth_token|api_key|apikey|key|secret|password|signature|sig"
# Each shape with a cheap test of the lowered text that it could be there at all: most fields (levels, names,
# ids) pass no test, and the redactor runs on every field of every line, a webhook's access line included.
SHAPES: tuple[tuple[str, re.Pattern[str], str], ...] = (
    # A credential after its scheme, as in an Authorization header or a curl command line.
    ("bearer", re.compile(r"(?i)\b(bearer)(\s+)[A-Za-z0-9._~+/=-]{4,}"), rf"\1\2{REDACTED}"),
    ("basic", re.compile(r"\b(Basic)(\s+)[A-Za-z0-9+/]{12,}={0,2}"), rf"\1\2{REDACTED}"),  # base64 user:password
    # The password of a URL: scheme://user:password@host. (A placeholder in a hint, `user:password@host`, stays.)
    ("://", re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]*:)(?!password@|<password>@)[^@\s/]+@"),
     rf"\1{REDACTED}@"),
    # A secret-named query parameter (?access_token=... on an SSE URL).
    ("=", re.compile(rf"(?i)([?&;](?:{_QUERY_NAMES})=)[^&#\s\"']+"), rf"\1{REDACTED}"),
    # A JWT (header.payload.signature, base64url, the header always starting with `{"`).
    ("eyj", re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+"), REDACTED),
    # The Twilio signature header quoted in some text.
    ("signature", re.compile(r"(?i)(x-twilio-signature['\"]?\s*[:=]\s*['\"]?)[A-Za-z0-9+/=]+"), rf"\1{REDACTED}"),
)
# The pipeline's own fields: never a secret, not worth a look.
OWN_FIELDS = frozenset({"level", "logger", "timestamp", "method", "status", "http_version"})


class Redactor:
    """A structlog processor replacing secrets in every string of an event dict, nested ones included."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._known: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def add(self, values: Iterable[str | None]) -> None:
        """Remember these secrets (None, empty and short values are ignored)."""
        fresh = {v for v in values if v and len(v) >= MIN_SECRET_LENGTH} - self._secrets
        if not fresh:
            return
        with self._lock:
            self._secrets |= fresh
            # Longest first, so that a secret containing another is replaced whole.
            ordered = sorted(self._secrets, key=len, reverse=True)
            self._known = re.compile("|".join(re.escape(s) for s in ordered))

    def text(self, value: str) -> str:
        """`value` with every known secret and every secret-shaped part replaced."""
        if len(value) < MIN_SECRET_LENGTH:  # shorter than any secret and any secret's shape
            return value
        known = self._known
        if known is not None:
            value = known.sub(REDACTED, value)
        lowered = value.lower()
        for hint, pattern, replacement in SHAPES:
            if hint in lowered:
                value = pattern.sub(replacement, value)
        return value

    def value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {k: REDACTED if _secret_field(k) and v else self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self.value(v) for v in value]
        if isinstance(value, bytes):
            return self.text(value.decode("utf-8", "replace"))
        return value

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
        for key, value in event_dict.items():
            if key in OWN_FIELDS:
                continue
            if _secret_field(key) and value:
                event_dict[key] = REDACTED
            elif isinstance(value, str | Mapping | list | tuple | set | frozenset | bytes):
                event_dict[key] = self.value(value)
        return event_dict


def _secret_field(name: object) -> bool:
    return isinstance(name, str) and name.lower() in SECRET_FIELDS


def url_password(url: str | None) -> str | None:
    """The password in a database URL, if any."""
    if not url:
        return None
    try:
        return urlsplit(url).password
    except ValueError:
        return None


def settings_secrets(settings: object) -> list[str]:
    """The secrets a Settings object holds (read by name: a field another version lacks is skipped)."""
    found = [getattr(settings, name, None) for name in ("twilio_auth_token", "twilio_api_secret")]
    found.append(url_password(getattr(settings, "database_url", None)))
    found += [getattr(key, "key", None) for key in getattr(settings, "api_keys", None) or []]
    return [value for value in found if isinstance(value, str)]


_KEY_IN_JSON = re.compile(r'"key"\s*:\s*"([^"]+)"')


def environment_secrets(environ: Mapping[str, str]) -> list[str]:
    """The secrets the environment holds, read without the Settings model (which may refuse the environment,
    and then quote it in its error)."""
    found: list[str] = []
    for name, value in environ.items():
        upper = name.upper()
        if not upper.startswith(("CONFCTL_", "TWILIO_")) and upper != "DATABASE_URL":
            continue
        if upper.endswith("API_KEYS"):
            found += _api_keys(value)
        elif upper.endswith("_URL"):
            found.append(url_password(value) or "")
        elif any(part in upper for part in ("TOKEN", "SECRET", "PASSWORD")):
            found.append(value)
    return [value for value in found if value]


def _api_keys(value: str) -> list[str]:
    try:
        keys = json.loads(value)
    except ValueError:
        return _KEY_IN_JSON.findall(value)
    if not isinstance(keys, list):
        return []
    return [k["key"] for k in keys if isinstance(k, dict) and isinstance(k.get("key"), str)]
