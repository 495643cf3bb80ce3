"""Settings from the environment or `.env`, prefix CONFCTL_ (API.md §1), and how a bad one is reported.

Twilio's own TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN are read when the CONFCTL_ ones are unset (the first name
set wins). `.env.example` at the top of the repo lists every variable with its default; a test keeps it so.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, BaseModel, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from confctl.entry import database_url as db_url
from confctl.entry.cors import check_origin
from confctl.service.webhook_urls import CONNECTION_OVERRIDES, check_overrides

Scope = Literal["read", "control", "supervise"]
Method = Literal["GET", "POST"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
PREFIX = "CONFCTL_"


def default_data_dir() -> Path:
    """$XDG_DATA_HOME/confctl, else ~/.local/share/confctl: the same folder whatever folder confctl runs in."""
    xdg = os.environ.get("XDG_DATA_HOME", "")
    if os.path.isabs(xdg):  # the XDG spec: a relative value is invalid and ignored
        return Path(xdg) / "confctl"
    try:
        return Path.home() / ".local" / "share" / "confctl"
    except RuntimeError:  # no $HOME and no passwd entry (a container run under an arbitrary uid)
        return Path.cwd() / ".confctl"



class ApiKey(BaseModel):
    """One API key: its name (recorded as the actor of its commands), secret and scopes."""

    name: str
    key: str = Field(min_length=8)
    scopes: list[Scope]


class Settings(BaseSettings):
    """Everything confctl reads from its environment."""

    # validate_by_name: code and tests pass fields by name, whatever variables the environment reads them from.
    model_config = SettingsConfigDict(env_prefix=PREFIX, env_file=".env", extra="ignore", validate_by_name=True)

    database_url: str | None = None  # normalised to postgresql+asyncpg:// (entry/database_url.py); "" is unset
    data_dir: Path = Field(default_factory=default_data_dir)
    log_level: LogLevel = "INFO"
    log_json: bool = False
    twilio_account_sid: str = Field(default="AC00000000000000000000000000000000",
                                    validation_alias=AliasChoices("CONFCTL_TWILIO_ACCOUNT_SID", "TWILIO_ACCOUNT_SID"))
    # The auth token signs REST requests unless an API key is set (below), and always checks webhook signatures:
    # Twilio signs every webhook with the account's (primary) auth token, never with an API key.
    twilio_auth_token: str = Field(default="",
                                   validation_alias=AliasChoices("CONFCTL_TWILIO_AUTH_TOKEN", "TWILIO_AUTH_TOKEN"))
    twilio_api_base: str = "https://api.twilio.com"
    twilio_timeout_s: float = 10.0
    public_url: str = "http://127.0.0.1:8000"
    caller_id: str = "+15550000000"
    api_keys: list[ApiKey] = []
    # Browsers (entry/cors.py, entry/browser_tokens.py): the origins allowed to call the API (JSON list; none: no
    # CORS headers at all), and the lifetime of browser tokens (default, and the most a caller may ask for).
    cors_origins: Annotated[list[str], NoDecode] = []  # parsed below: an empty value is an empty list
    token_ttl_s: int = Field(default=300, ge=1, le=86_400)
    token_max_ttl_s: int = Field(default=3600, ge=1, le=86_400)
    # Twilio Voice access tokens for softphones (POST /v1/agents/{identity}/voice-token): signed with an API key
    # (SK…) and its secret; calls the softphone places run the TwiML app (AP…). Twilio allows at most 24 h.
    # With both set, REST requests authenticate with the API key too (entry/twilio_client.py).
    twilio_api_key: str = ""
    twilio_api_secret: str = ""
    twilio_twiml_app_sid: str = ""
    voice_token_ttl_s: int = Field(default=3600, ge=1, le=86_400)
    hold_music_url: str | None = None
    wait_url: str | None = None
    # How Twilio fetches those URLs: GET (Twilio's advice for static audio, which it then caches) or POST (a
    # TwiML app that wants Twilio's parameters in a form). Twilio's own default is POST for a waitUrl.
    wait_method: Method = "GET"
    hold_method: Method = "GET"
    record: bool = False
    # The fragment on every webhook URL confctl hands Twilio (service/webhook_urls.py); "" for none.
    twilio_connection_overrides: str = CONNECTION_OVERRIDES
    # Live updates (SSE): a stream is closed after sse_max_s (the client reconnects with Last-Event-ID), gets a
    # heartbeat comment every sse_heartbeat_s, and re-reads the store every sse_poll_s even without a NOTIFY.
    sse_max_s: float = Field(default=1800.0, gt=0)
    sse_heartbeat_s: float = Field(default=15.0, gt=0)
    sse_poll_s: float = Field(default=5.0, gt=0)
    # The write path: appends in flight toward PostgreSQL at once (each a batch), and the largest batch.
    append_concurrency: int = Field(default=8, ge=1, le=64)
    append_batch: int = Field(default=64, ge=1, le=1000)
    db_pool_size: int = Field(default=16, ge=2, le=200)
    # A database that is down or frozen: each connect, pool checkout and statement waits at most db_timeout_s
    # (then 503, and every request fails at once until the database answers a probe again); a webhook answers
    # within webhook_timeout_s whatever happens (Twilio gives up after 15 s); the voice webhook waits
    # voice_store_wait_s for its fact, then answers its TwiML anyway and stores the fact once it can.
    db_timeout_s: float = Field(default=3.0, gt=0, le=60)
    webhook_timeout_s: float = Field(default=10.0, gt=0, le=14)
    voice_store_wait_s: float = Field(default=2.0, gt=0, le=10)
    webhook_concurrency: int = Field(default=64, ge=1, le=10_000)  # webhooks handled at once; the rest queue
    # The outbox: how often each process looks for effects left by dead processes; how long a command
    # waits for Twilio's answer to its effects before answering 503 (the effects go on in the outbox).
    outbox_poll_s: float = Field(default=1.0, gt=0)
    command_timeout_s: float = Field(default=20.0, gt=0)
    # How long an effect is tried again (with backoff) while Twilio cannot be reached before its failure is
    # stored; and how often live conferences are compared with Twilio and repaired (0: never).
    effect_retry_s: float = Field(default=600.0, ge=0)
    effect_backoff_max_s: float = Field(default=30.0, gt=0)  # the longest wait between two tries
    reconcile_s: float = Field(default=30.0, ge=0)
    # Lost callbacks noticed as they happen (service/suspicions.py) get their conference reconciled at once: a
    # SequenceNumber gap, or a conference still `init` with two legs joined, that lasts reconcile_grace_s
    # (callbacks arrive out of order); a leg still dialing reconcile_dialing_margin_s after its ring timeout
    # and Twilio's 5 s buffer. reconcile_triggers=false: only the periodic sweep.
    reconcile_triggers: bool = True
    reconcile_grace_s: float = Field(default=2.0, gt=0, le=300)
    reconcile_dialing_margin_s: float = Field(default=30.0, ge=0, le=3600)

    @field_validator("api_keys", mode="before")
    @classmethod
    def _parse_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return json.loads(value) if value.strip() else []
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _parse_origins(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return json.loads(value) if value.strip() else []
            except json.JSONDecodeError:
                raise ValueError('a JSON list of origins, e.g. ["https://app.example.com"]') from None
        return value

    @field_validator("cors_origins")
    @classmethod
    def _check_origins(cls, value: list[str]) -> list[str]:
        return [check_origin(origin) for origin in value]

    @field_validator("wait_method", "hold_method", mode="before")
    @classmethod
    def _upper_method(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("twilio_connection_overrides")
    @classmethod
    def _check_overrides(cls, value: str) -> str:
        return check_overrides(value.removeprefix("#"))

    @field_validator("public_url", "twilio_api_base")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("database_url", mode="before")
    @classmethod
    def _normalise_database_url(cls, value: object) -> object:
        if isinstance(value, str):
            return db_url.normalise(value) if value.strip() else None
        return value

    @field_validator("data_dir")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return value.expanduser()  # `~/…` in a .env file, which no shell expands

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("log_json", mode="before")
    @classmethod
    def _empty_is_off(cls, value: object) -> object:
        return False if isinstance(value, str) and not value.strip() else value


def env_names(field: str) -> tuple[str, ...]:
    """The variables a setting is read from, the first set winning: CONFCTL_<FIELD>, or its aliases."""
    alias = Settings.model_fields[field].validation_alias
    if isinstance(alias, AliasChoices):
        return tuple(str(choice) for choice in alias.choices)
    return (str(alias),) if alias else (PREFIX + field.upper(),)


def describe(error: ValidationError) -> list[str]:
    """One line per invalid setting, naming its variable; never the value given (it may be a secret)."""
    lines = []
    for problem in error.errors(include_url=False, include_input=False):
        where = problem["loc"][0] if problem["loc"] else None
        if isinstance(where, str) and where in Settings.model_fields:
            variable = env_names(where)[0]
        elif isinstance(where, str):
            variable = where.upper()  # an alias, as the environment spells it
        else:
            variable = "settings"
        message = str(problem["msg"]).removeprefix("Value error, ")
        inside = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in problem["loc"][1:])
        lines.append(f"{variable}{inside}: {message}")
    return lines
