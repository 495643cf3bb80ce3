"""The log redactor: configured secrets by value and secret-shaped text are replaced in every field."""

from __future__ import annotations

import json

import pytest

from confctl.entry.logging import QuietProbes, safe_path
from confctl.entry.redaction import REDACTED, Redactor, environment_secrets, settings_secrets
from confctl.entry.settings import ApiKey, Settings

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJvcHMifQ.c2lnbmF0dXJlLXZhbHVl"


def redacted(redactor: Redactor, **fields: object) -> dict[str, object]:
    return redactor(None, "info", dict(fields))


def test_known_secrets_are_replaced_wherever_they_appear() -> None:
    """A registered secret is replaced inside any string, nested in lists and dicts, and in bytes."""
    redactor = Redactor()
    redactor.add(["auth-token-123456", "short", None, ""])
    out = redacted(redactor, event="token auth-token-123456 used", nested={"a": ["x auth-token-123456"]},
                   raw=b"auth-token-123456", count=3)
    assert out == {"event": f"token {REDACTED} used", "nested": {"a": [f"x {REDACTED}"]}, "raw": REDACTED,
                   "count": 3}
    assert redacted(redactor, event="short stays")["event"] == "short stays"  # too short to be taken as a secret


@pytest.mark.parametrize(("text", "expected"), [
    ("Authorization: Bearer ops-key-abcdef", f"Authorization: Bearer {REDACTED}"),
    ("Basic dXNlcjpwYXNzd29yZA==", f"Basic {REDACTED}"),
    ("basic set-up done", "basic set-up done"),
    ("postgresql+asyncpg://app:s3cr3t@db:5432/confctl", f"postgresql+asyncpg://app:{REDACTED}@db:5432/confctl"),
    ("postgresql+asyncpg://postgres:@/confctl?host=/tmp", "postgresql+asyncpg://postgres:@/confctl?host=/tmp"),
    ("write postgresql://user:password@host/db", "write postgresql://user:password@host/db"),
    ("GET /v1/stream?after=3&access_token=abc.def", f"GET /v1/stream?after=3&access_token={REDACTED}"),
    (f"token {JWT} refused", f"token {REDACTED} refused"),
    ("X-Twilio-Signature: Zm9vYmFyYmF6PQ==", f"X-Twilio-Signature: {REDACTED}"),
])
def test_secret_shapes_are_replaced(text: str, expected: str) -> None:
    """Bearer/Basic credentials, URL passwords, secret query parameters, JWTs and signatures, from anywhere."""
    assert Redactor().text(text) == expected


def test_fields_named_like_secrets_are_replaced_whole() -> None:
    """A field called `authorization`, `password`, `token`, ... never shows its value."""
    out = redacted(Redactor(), authorization="anything", headers={"X-Twilio-Signature": "abc", "accept": "*/*"},
                   token=None)
    assert out == {"authorization": REDACTED, "headers": {"X-Twilio-Signature": REDACTED, "accept": "*/*"},
                   "token": None}


def test_the_secrets_of_settings_and_of_the_environment_are_found() -> None:
    """The auth token, API secret, every API key and the database password, from Settings or from raw variables
    (also when CONFCTL_API_KEYS is not even valid JSON)."""
    settings = Settings(twilio_auth_token="tok-0123456789", database_url="postgresql://u:pw-0123456789@h/db",
                        api_keys=[ApiKey(name="a", key="key-0123456789", scopes=["read"])])
    assert set(settings_secrets(settings)) >= {"tok-0123456789", "pw-0123456789", "key-0123456789"}
    env = {"CONFCTL_TWILIO_API_SECRET": "sec-0123456789", "TWILIO_AUTH_TOKEN": "tok-9876543210",
           "CONFCTL_API_KEYS": json.dumps([{"name": "a", "key": "key-9876543210", "scopes": ["read"]}]),
           "CONFCTL_DATABASE_URL": "postgres://u:pw-9876543210@h/db", "CONFCTL_PUBLIC_URL": "https://x.example",
           "HOME": "/root"}
    assert set(environment_secrets(env)) == {"sec-0123456789", "tok-9876543210", "key-9876543210", "pw-9876543210"}
    assert environment_secrets({"CONFCTL_API_KEYS": '[{"name": "a", "key": "key-broken-json"'}) == ["key-broken-json"]


def test_access_paths_lose_their_secret_query_values() -> None:
    """The access line's path keeps every query parameter but the value of a secret-named one."""
    assert safe_path("/v1/stream?after=4&access_token=eyJ.x.y") == f"/v1/stream?after=4&access_token={REDACTED}"
    assert safe_path("/v1/conferences") == "/v1/conferences"


def test_successful_probes_are_debug_lines() -> None:
    """uvicorn's access line for a 200 /readyz is dropped at INFO; a failing probe and other paths stay."""
    import logging

    def record(path: str, status: int) -> logging.LogRecord:
        return logging.LogRecord("uvicorn.access", logging.INFO, "", 0, '%s - "%s %s HTTP/%s" %d',
                                 ("127.0.0.1:1", "GET", path, "1.1", status), None)

    quiet = QuietProbes()
    logging.getLogger("uvicorn.access").setLevel(logging.INFO)
    try:
        assert not quiet.filter(record("/readyz", 200))
        assert quiet.filter(record("/readyz", 503))
        assert quiet.filter(record("/v1/conferences", 200))
        logging.getLogger("uvicorn.access").setLevel(logging.DEBUG)
        probe = record("/healthz", 200)
        assert quiet.filter(probe) and probe.levelname == "DEBUG"
    finally:
        logging.getLogger("uvicorn.access").setLevel(logging.NOTSET)
