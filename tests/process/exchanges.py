"""What the test proxy records and decides: one `Exchange` per request, `Rule`s choosing an `Action` for it.

A rule matches on method, a regex over the decoded path and query or form fields (e.g. `Label=bob`,
`Hold=true`), optionally for a limited number of requests. An exchange is stamped when it was received,
forwarded (the upstream answered) and answered (the client got the answer): its `Rule.moment` is what a
test waits for before it kills a process.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit

Stage = Literal["received", "forwarded", "answered"]
Headers = list[tuple[bytes, bytes]]

# Fields worth showing when an exchange is printed in a failure message.
_SHOWN_FIELDS = ("Label", "Hold", "Muted", "Status", "StatusCallbackEvent", "ParticipantLabel", "CallStatus",
                 "SequenceNumber")
# Headers that describe one connection, not the message: never copied across the proxy.
HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"upgrade",
                        b"transfer-encoding", b"content-length", b"content-encoding", b"host"})


class Action(StrEnum):
    """What the proxy does with a request a rule matches."""

    PASS = "pass"  # forward it, return the answer
    HOLD_REQUEST = "hold_request"  # record it, never forward it, keep the connection open
    HOLD_RESPONSE = "hold_response"  # forward it (the upstream acts), never return the answer
    DELAY = "delay"  # wait `delay_s`, then forward it and return the answer
    RESPOND = "respond"  # answer `status` at once, never forward it
    LOSE_ANSWER = "lose_answer"  # forward it (the upstream acts), then answer `status` instead of its answer


# The moment a test usually wants for each action (see `Rule.moment`).
_MOMENTS: dict[Action, Stage] = {
    Action.PASS: "answered",
    Action.HOLD_REQUEST: "received",
    Action.HOLD_RESPONSE: "forwarded",
    Action.DELAY: "received",
    Action.RESPOND: "received",
    Action.LOSE_ANSWER: "forwarded",
}


@dataclass(eq=False, repr=False)
class Exchange:
    """One request through the proxy and what became of it (monotonic times, None: not yet, or never)."""

    method: str
    target: str  # as sent: path and query, still percent-encoded
    headers: Headers
    body: bytes
    received_at: float
    rule: Rule | None = None
    upstream: str | None = None
    upstream_status: int | None = None
    forwarded_at: float | None = None
    status: int | None = None
    answered_at: float | None = None

    @property
    def path(self) -> str:
        """The decoded path (labels readable, `%2F` a slash)."""
        return unquote(urlsplit(self.target).path)

    @cached_property
    def fields(self) -> dict[str, list[str]]:
        """Query and form fields together (a form body is parsed whatever its declared type)."""
        fields = parse_qs(urlsplit(self.target).query, keep_blank_values=True)
        for name, values in parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True).items():
            fields.setdefault(name, []).extend(values)
        return fields

    def field(self, name: str) -> str | None:
        """The first value of a query or form field."""
        values = self.fields.get(name)
        return values[0] if values else None

    def reached(self, stage: Stage) -> bool:
        return {"received": self.received_at, "forwarded": self.forwarded_at, "answered": self.answered_at}[
            stage] is not None

    def waited(self, now: float | None = None) -> float:
        """Seconds from receipt to the answer, or until `now` (default: this instant) if unanswered."""
        end = self.answered_at if self.answered_at is not None else (now or time.monotonic())
        return end - self.received_at

    def describe(self) -> str:
        shown = " ".join(f"{name}={self.field(name)}" for name in _SHOWN_FIELDS if self.field(name) is not None)
        answer = f"{self.status} after {self.waited():.3f}s" if self.status is not None else \
            f"unanswered for {self.waited():.3f}s"
        action = self.rule.action if self.rule else Action.PASS
        return f"{self.method} {self.path} {shown} -> {answer} [{action}]".replace("  ", " ")

    def __repr__(self) -> str:
        return f"<Exchange {self.describe()}>"


@dataclass(eq=False)
class Rule:
    """Which requests to treat how; the first rule in `Proxy.rules` that matches applies.

    `path` is a regex searched in the decoded path; `fields` are query or form fields that must carry these
    values (e.g. `{"Label": "bob"}`, `{"Hold": "true"}`); `times` limits the rule to that many requests,
    after which it steps aside (None: every matching request).
    """

    action: Action = Action.PASS
    method: str | None = None
    path: str | None = None
    fields: Mapping[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    status: int = 204
    times: int | None = None
    hits: list[Exchange] = field(default_factory=list)

    @property
    def moment(self) -> Stage:
        """When the rule has done its work: received (held, delayed, answered by the proxy), forwarded (the
        upstream acted, its answer is withheld) or answered (passed)."""
        return _MOMENTS[self.action]

    def matches(self, exchange: Exchange) -> bool:
        if self.times is not None and len(self.hits) >= self.times:
            return False
        if self.method is not None and exchange.method != self.method.upper():
            return False
        if self.path is not None and not re.search(self.path, exchange.path):
            return False
        return all(value in exchange.fields.get(name, []) for name, value in self.fields.items())

    def __str__(self) -> str:
        return f"{self.action} {self.method or '*'} {self.path or '*'} {dict(self.fields) or ''}".rstrip()
