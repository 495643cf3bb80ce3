"""Twilio's webhook connection overrides: the `#ct=…&rc=…` fragment of a callback or voice URL.

As Twilio documents them ("Webhooks (HTTP callbacks): Connection Overrides",
https://www.twilio.com/docs/usage/webhooks/webhooks-connection-overrides; shared/twilio/webhooks.md §e):
key=value pairs after `#`, joined by `&`.

| key   | meaning                                                         | valid                   | default   |
| ----- | --------------------------------------------------------------- | ----------------------- | --------- |
| `ct`  | TCP connect timeout, ms                                         | 100–10000               | 5000      |
| `rt`  | read timeout, ms: until the first response packet, and between  | 100–15000               | 15000     |
| `tt`  | total time of all attempts, retries included, ms                | 100–15000               | 15000     |
| `rc`  | retry count                                                     | 0–5                     | 1         |
| `rp`  | retry policy: `4xx`, `5xx`, `ct` (connect/TLS), `rt`, `all`     | comma-separated list    | `ct`      |
| `sni` | use SNI (HTTPS only)                                            | `y` / `n`               | `y`       |
| `e`   | egress edge; a list rotates across retries                      | the edges below         | `ashburn` |

Without a fragment: one retry, on a failed connect only; 4xx, 5xx and read timeouts are not retried, nor is
a partial response ever. An invalid `rp` is Twilio error 11243, an invalid edge 11240, an Interconnect edge
on an account without Interconnect 11242 (the simulated account has none): the request is not made.
The fragment is neither sent nor signed (`signing.py`).

Where the page is silent, the simulator takes the reading less convenient for the receiver, and says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

EDGES = frozenset({"ashburn", "dublin", "frankfurt", "sao-paulo", "singapore", "sydney", "tokyo", "umatilla"})
INTERCONNECT_EDGES = frozenset({"ashburn-ix", "frankfurt-ix", "london-ix", "san-jose-ix", "singapore-ix"})
POLICIES = frozenset({"4xx", "5xx", "ct", "rt", "all"})
_RANGES = {"ct": (100, 10_000), "rt": (100, 15_000), "tt": (100, 15_000), "rc": (0, 5)}
# Every call-related HTTP request is capped at 15 s, whatever the overrides say.
HARD_LIMIT_MS = 15_000


class InvalidOverrides(ValueError):
    """A fragment Twilio would refuse: the request is not made (`code` is Twilio's error, when it has one)."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class ConnectionOverrides:
    """How one webhook is delivered: timeouts, retries, edges (Twilio's defaults unless the URL says)."""

    connect_timeout_ms: int = 5_000
    read_timeout_ms: int = 15_000
    total_timeout_ms: int = 15_000
    retry_count: int = 1
    retry_policy: frozenset[str] = frozenset({"ct"})
    sni: bool = True
    edges: tuple[str, ...] = ("ashburn",)

    def retries_on(self, failure: str) -> bool:
        """Whether a failed attempt of this class (`4xx`, `5xx`, `ct`, `rt`) may be retried."""
        return failure in self.retry_policy or ("all" in self.retry_policy and failure in POLICIES)

    def edge_for(self, attempt: int) -> str:
        """The edge of the `attempt`-th attempt (from 1): a list of edges rotates across retries."""
        return self.edges[(attempt - 1) % len(self.edges)]

    @property
    def budget_s(self) -> float:
        return min(self.total_timeout_ms, HARD_LIMIT_MS) / 1000


DEFAULT = ConnectionOverrides()


def parse_overrides(url: str) -> ConnectionOverrides:
    """The overrides in `url`'s fragment (Twilio's defaults for the keys it leaves out); InvalidOverrides
    when Twilio would not make the request."""
    fragment = urlsplit(url).fragment
    if not fragment:
        return DEFAULT
    values: dict[str, str] = {}
    for pair in fragment.split("&"):
        key, sep, value = pair.partition("=")
        # The page lists its keys and nothing else. An unknown key, a pair without `=` or a key given
        # twice: silent there; refused here (the less convenient reading), so a typo cannot pass unnoticed.
        if not sep or key not in {*_RANGES, "rp", "sni", "e"}:
            raise InvalidOverrides(f"unknown connection override {pair!r} in #{fragment}")
        if key in values:
            raise InvalidOverrides(f"connection override {key!r} given twice in #{fragment}")
        values[key] = value
    numbers = {key: _number(key, values[key]) for key in _RANGES if key in values}
    return ConnectionOverrides(
        connect_timeout_ms=numbers.get("ct", DEFAULT.connect_timeout_ms),
        read_timeout_ms=numbers.get("rt", DEFAULT.read_timeout_ms),
        total_timeout_ms=numbers.get("tt", DEFAULT.total_timeout_ms),
        retry_count=numbers.get("rc", DEFAULT.retry_count),
        retry_policy=_policy(values["rp"]) if "rp" in values else DEFAULT.retry_policy,
        sni=_sni(values["sni"]) if "sni" in values else DEFAULT.sni,
        edges=_edges(values["e"]) if "e" in values else DEFAULT.edges,
    )


def _number(key: str, value: str) -> int:
    # Out of range or not a whole number: the page gives the range but not what Twilio does outside it.
    # Refused rather than clamped or ignored (the less convenient reading).
    low, high = _RANGES[key]
    if not value.isdigit() or not low <= int(value) <= high:
        raise InvalidOverrides(f"connection override {key}={value!r}: a whole number from {low} to {high}")
    return int(value)


def _policy(value: str) -> frozenset[str]:
    policies = value.split(",")
    if not all(p in POLICIES for p in policies):
        raise InvalidOverrides(f"HTTP retry policy is invalid: rp={value!r}", 11243)
    return frozenset(policies)


def _sni(value: str) -> bool:
    if value not in ("y", "n"):
        raise InvalidOverrides(f"connection override sni={value!r}: y or n")
    return value == "y"


def _edges(value: str) -> tuple[str, ...]:
    edges = tuple(value.split(","))
    for edge in edges:
        if edge in INTERCONNECT_EDGES:
            raise InvalidOverrides(f"HTTP connection over Twilio Interconnect is not allowed: e={edge}", 11242)
        if edge not in EDGES:
            raise InvalidOverrides(f"HTTP connection edge location is invalid: e={edge}", 11240)
    return edges
