"""Settings from the environment or `.env`, prefix CONFCTL_ (API.md §1)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from confctl.service.webhook_urls import CONNECTION_OVERRIDES, check_overrides

Scope = Literal["read", "control", "supervise"]
Method = Literal["GET", "POST"]


class ApiKey(BaseModel):
    """One API key: its name (recorded as the actor of its commands), secret and scopes."""

    name: str
    key: str = Field(min_length=8)
    scopes: list[Scope]


class Settings(BaseSettings):
    """Everything confctl reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="CONFCTL_", env_file=".env", extra="ignore")

    database_url: str | None = None
    data_dir: Path = Path(".confctl")
    twilio_account_sid: str = "AC00000000000000000000000000000000"
    twilio_auth_token: str = ""
    twilio_api_base: str = "https://api.twilio.com"
    twilio_timeout_s: float = 10.0
    public_url: str = "http://127.0.0.1:8000"
    caller_id: str = "+15550000000"
    api_keys: list[ApiKey] = []
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
