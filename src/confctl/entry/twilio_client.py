"""How confctl authenticates to Twilio, from its settings: the REST gateway's credentials, and whether they can work.

REST requests authenticate with CONFCTL_TWILIO_API_KEY / CONFCTL_TWILIO_API_SECRET when both are set (Twilio's
advice for production: a key can be revoked alone), else with the account SID and auth token. Webhooks are another
matter: Twilio signs every one with the account's primary auth token, never with an API key
(https://www.twilio.com/docs/usage/webhooks/webhooks-security), so the auth token stays required to verify them,
and confctl refuses unsigned or wrongly signed webhooks (403) whatever the REST credentials.
"""

from __future__ import annotations

from confctl.adapters.twilio_gateway import SdkTwilioGateway
from confctl.adapters.twilio_http import HttpxTwilioHttpClient
from confctl.entry.settings import Settings

TWILIO_API = "https://api.twilio.com"


def api_key(settings: Settings) -> tuple[str, str] | None:
    """(API key SID, secret) when both are set: what REST requests authenticate with; else None."""
    if settings.twilio_api_key and settings.twilio_api_secret:
        return settings.twilio_api_key, settings.twilio_api_secret
    return None


def twilio_gateway(settings: Settings, *, http_client: HttpxTwilioHttpClient | None = None) -> SdkTwilioGateway:
    """The gateway to Twilio (or to CONFCTL_TWILIO_API_BASE) with the settings' credentials; over `http_client`
    when given (the caller closes it)."""
    base_url = None if http_client is not None or settings.twilio_api_base == TWILIO_API else settings.twilio_api_base
    return SdkTwilioGateway(settings.twilio_account_sid, settings.twilio_auth_token, http_client=http_client,
                            base_url=base_url, timeout_s=settings.twilio_timeout_s, api_key=api_key(settings))


def configured(settings: Settings) -> bool:
    """Whether any Twilio credential was given: else confctl is not talking to a Twilio account at all."""
    given = settings.model_fields_set & {"twilio_account_sid", "twilio_auth_token"}
    return bool(given or settings.twilio_api_key or settings.twilio_api_secret)


def twilio_problems(settings: Settings) -> list[str]:
    """Why these Twilio credentials cannot work, one line each naming the variable (none: they can, or none were
    given). `confctl serve` refuses to start on any: every call would fail at its first webhook or request."""
    if not configured(settings):
        return []
    problems = []
    if not settings.twilio_auth_token:
        problems.append("CONFCTL_TWILIO_AUTH_TOKEN (or TWILIO_AUTH_TOKEN) is not set: Twilio signs every webhook "
                        "with the account's auth token, also when REST requests use an API key, so confctl "
                        "would verify no webhook and refuse them all")
    if settings.twilio_api_key and not settings.twilio_api_secret:
        problems.append("CONFCTL_TWILIO_API_SECRET is not set, but CONFCTL_TWILIO_API_KEY is: set both or neither")
    if settings.twilio_api_secret and not settings.twilio_api_key:
        problems.append("CONFCTL_TWILIO_API_KEY is not set, but CONFCTL_TWILIO_API_SECRET is: set both or neither")
    if settings.twilio_api_key and not settings.twilio_api_key.startswith("SK"):
        problems.append("CONFCTL_TWILIO_API_KEY must be an API key SID (SK…), from the Twilio Console's API keys")
    return problems
