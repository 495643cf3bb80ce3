"""The webhook URLs confctl hands Twilio, each carrying the connection overrides that make Twilio retry.

Twilio retries a webhook only as its URL's fragment allows ("Webhooks (HTTP callbacks): Connection
Overrides", https://www.twilio.com/docs/usage/webhooks/webhooks-connection-overrides): without one, once and
only when the connection fails, so a 503 or a hung answer while confctl restarts or its database is away
loses the fact. confctl's webhooks are idempotent (every fact has a dedupe key from Twilio's own ids), so
everything Twilio can retry is worth retrying: connect failures, read timeouts and 5xx answers, as often as
Twilio allows (`rc=5`), within its 15 s ceiling (`tt=15000`). Not 4xx: a 403 (signature) or a 400 (field
missing) answers the same every time. `rt=4000`: a webhook answers in milliseconds, one that has said
nothing for 4 s is stuck, and a fresh attempt has a chance; `ct=3000` leaves room for a lost SYN.

Twilio neither sends nor signs the fragment, so signatures are checked over the URL without it. Twilio
documents no pause between retries: they may all fall within a restart that refuses connections, so the
overrides narrow the window in which callbacks are lost but do not close it (reconciliation does).
Every way into a conference must carry the same status callback URL, fragment included (the first
participant's settings win): build them all here.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

CONNECTION_OVERRIDES = "ct=3000&rt=4000&tt=15000&rc=5&rp=ct,rt,5xx"

# Twilio's documented keys and limits; a value outside them makes Twilio refuse the URL (e.g. error 11243).
_RANGES = {"ct": (100, 10_000), "rt": (100, 15_000), "tt": (100, 15_000), "rc": (0, 5)}
_POLICIES = {"4xx", "5xx", "ct", "rt", "all"}
_OTHER_KEYS = {"rp", "sni", "e"}


def check_overrides(overrides: str) -> str:
    """`overrides` (the fragment, without `#`) if Twilio would accept it; ValueError saying why not."""
    seen: set[str] = set()
    for pair in filter(None, overrides.split("&")):
        key, sep, value = pair.partition("=")
        if not sep or key in seen or key not in {*_RANGES, *_OTHER_KEYS}:
            raise ValueError(f"connection override {pair!r}: expected each of ct rt tt rc rp sni e once, as key=value")
        seen.add(key)
        if key in _RANGES:
            low, high = _RANGES[key]
            if not value.isdigit() or not low <= int(value) <= high:
                raise ValueError(f"connection override {key}={value}: a whole number from {low} to {high}")
        elif key == "rp" and not set(value.split(",")) <= _POLICIES:
            raise ValueError(f"connection override rp={value}: a list of {', '.join(sorted(_POLICIES))}")
        elif key == "sni" and value not in ("y", "n"):
            raise ValueError(f"connection override sni={value}: y or n")
    return overrides


def with_overrides(url: str, overrides: str = CONNECTION_OVERRIDES) -> str:
    """`url` with `#overrides` (replacing a fragment it had); `url` unchanged when there are none."""
    base = url.split("#", 1)[0]
    return f"{base}#{overrides}" if overrides else base


@dataclass(frozen=True, slots=True)
class WebhookUrls:
    """confctl's four webhooks under one public base URL, with the connection overrides on each."""

    public_url: str
    overrides: str = CONNECTION_OVERRIDES

    def _url(self, path: str, query: dict[str, str] | None = None) -> str:
        url = f"{self.public_url.rstrip('/')}{path}" + (f"?{urlencode(query)}" if query else "")
        return with_overrides(url, self.overrides)

    def voice(self) -> str:
        """The number's voice URL (set in the Twilio console; `confctl dev` sets it on the simulator)."""
        return self._url("/twilio/voice")

    def conference_status(self) -> str:
        return self._url("/twilio/conference-status")

    def call_status(self, conference_id: str, label: str) -> str:
        return self._url("/twilio/call-status", {"conference_id": conference_id, "label": label})

    def recording_status(self, conference_id: str) -> str:
        return self._url("/twilio/recording-status", {"conference_id": conference_id})
