"""Signed Twilio conference-status callbacks for the benchmark, precomputed and written for wrk.

Every callback is a new fact: each conference gets a fresh name (`room-CA{U}…`, with U unique per set and
conference), a participant-join at SequenceNumber 1, then hold / unhold / mute / unmute at 2, 3, 4, …, so
no request of any set repeats another one (confctl's dedupe key is ConferenceSid + SequenceNumber + event).
The fields are Twilio's, as tests/support/twilio_forms.py builds them; the signature is Twilio's
(HMAC-SHA1 over the public URL + path + the sorted fields), computed here with hmac for speed and checked
against twilio's own RequestValidator on the first request of every set.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import quote_plus

from twilio.request_validator import RequestValidator

ACCOUNT_SID = "AC" + "be" * 16
AUTH_TOKEN = "bench-auth-token-0123456789abcdef"
PATH = "/twilio/conference-status"
T0 = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)

# After the join, each conference cycles through these (event, Hold, Muted) for SequenceNumber 2, 3, …
CYCLE: list[tuple[str, bool, bool]] = [
    ("participant-hold", True, False),
    ("participant-unhold", False, False),
    ("participant-mute", False, True),
    ("participant-unmute", False, False),
]

_set_counter = itertools.count(1)


def next_set_id() -> int:
    """A number never used before in this run: it makes the conference names of a set fresh."""
    return next(_set_counter)


def unique(set_id: int, conference: int) -> str:
    """The 16 hex digits shared by a conference's name, ConferenceSid and customer CallSid."""
    return f"{set_id:08x}{conference:08x}"


@dataclass(frozen=True, slots=True)
class Conf:
    """One synthetic conference: its name, Twilio sid and the call sids of its customer and agent."""

    name: str
    sid: str
    customer: str
    agent: str

    @classmethod
    def of(cls, set_id: int, conference: int) -> Conf:
        u = unique(set_id, conference)
        return cls(name=f"room-CA{u}{'0' * 16}", sid=f"CF{u}{'0' * 16}", customer=f"CA{u}{'0' * 16}",
                   agent=f"CA{u}{'0' * 15}1")


def params(conf: Conf, seq: int, event: str, *, agent: bool = False, hold: bool = False,
           muted: bool = False) -> dict[str, str]:
    """The form of one conference status callback, with the fields Twilio sends."""
    form = {
        "ConferenceSid": conf.sid, "FriendlyName": conf.name, "AccountSid": ACCOUNT_SID,
        "SequenceNumber": str(seq), "StatusCallbackEvent": event,
        "Timestamp": format_datetime(T0 + timedelta(seconds=seq), usegmt=True),
    }
    if event.startswith("participant-"):
        form |= {
            "CallSid": conf.agent if agent else conf.customer, "Muted": str(muted).lower(),
            "Hold": str(hold).lower(), "Coaching": "false", "EndConferenceOnExit": str(not agent).lower(),
            "StartConferenceOnEnter": "true", "ParticipantLabel": "agent-1" if agent else "customer",
        }
    return form


def cycle_params(conf: Conf, seq: int) -> dict[str, str]:
    """SequenceNumber `seq` of the ingest pattern: 1 is the customer's join, then the hold/mute cycle."""
    if seq == 1:
        return params(conf, 1, "participant-join")
    event, hold, muted = CYCLE[(seq - 2) % len(CYCLE)]
    return params(conf, seq, event, hold=hold, muted=muted)


def live_params(conf: Conf) -> list[dict[str, str]]:
    """A live conference: customer joins, agent joins, the conference starts (nothing ends)."""
    return [params(conf, 1, "participant-join"), params(conf, 2, "participant-join", agent=True),
            params(conf, 3, "conference-start")]


def sign(url: str, form: dict[str, str], token: str = AUTH_TOKEN) -> str:
    """X-Twilio-Signature of a POST of `form` to `url` (every value single, as in our callbacks)."""
    data = url + "".join(k + form[k] for k in sorted(form))
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def check_signature(url: str, form: dict[str, str]) -> None:
    """Fail loudly if our signature ever differs from twilio's RequestValidator."""
    expected = RequestValidator(AUTH_TOKEN).compute_signature(url, form)
    if sign(url, form) != expected:
        raise AssertionError(f"signature mismatch for {url}: {sign(url, form)} != {expected}")


# Names, sids, flags and timestamps repeat across a set: quoting each once makes sets several times faster.
_quote = functools.lru_cache(maxsize=1 << 16)(quote_plus)


def urlencode(form: dict[str, str]) -> str:
    """urllib.parse.urlencode(form) for str values, with a cache of quoted strings."""
    return "&".join(f"{_quote(k)}={_quote(v)}" for k, v in form.items())


def line(public_url: str, form: dict[str, str], path: str = PATH) -> str:
    """One request for wrk's Lua script: path, signature and urlencoded body, tab-separated."""
    return f"{path}\t{sign(public_url + path, form)}\t{urlencode(form)}\n"


def http_request(host: str, public_url: str, form: dict[str, str], path: str = PATH) -> bytes:
    """The same request as raw HTTP/1.1 bytes (for the exact-once sender)."""
    body = urlencode(form).encode()
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            f"X-Twilio-Signature: {sign(public_url + path, form)}\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


@dataclass(frozen=True)
class WrkSet:
    """A set of callbacks written for wrk: `prefix-{thread}.txt` per wrk thread (1-based), and its size."""

    prefix: Path
    per_thread: list[int]
    lanes: list[int]  # conferences per thread

    @property
    def total(self) -> int:
        return sum(self.per_thread)

    def remove(self) -> None:
        for thread in range(1, len(self.per_thread) + 1):
            Path(f"{self.prefix}-{thread}.txt").unlink(missing_ok=True)


def ingest_forms(set_id: int, conferences: int, total: int, thread: int, threads: int,
                 first_seq: int = 1) -> Iterator[dict[str, str]]:
    """Thread `thread`'s share (0-based) of `total` callbacks over `conferences` conferences, from `first_seq`.

    A thread owns the conferences c with c % threads == thread, so two threads never send callbacks of one
    conference; within a thread the order is round by round (every conference's seq 1, then every seq 2, …),
    so concurrent requests almost never hit the same conference.
    """
    own = [Conf.of(set_id, c) for c in range(thread, conferences, threads)]
    share = total // threads + (1 if thread < total % threads else 0)
    sent = 0
    for seq in itertools.count(first_seq):
        for conf in own:
            if sent == share:
                return
            yield cycle_params(conf, seq)
            sent += 1


def write_ingest_set(directory: Path, label: str, public_url: str, total: int, conferences: int = 2000,
                     threads: int = 2, set_id: int | None = None, first_seq: int = 1) -> WrkSet:
    """Write a set of `total` callbacks never sent before, for `threads` wrk threads.

    By default the conferences are fresh (a new `set_id`) and start with their join; given the `set_id` of
    conferences already joined, the set continues them from `first_seq`.
    """
    set_id = next_set_id() if set_id is None else set_id
    prefix = directory / f"{label}-{set_id}-{first_seq}"
    counts: list[int] = []
    lanes = [len(range(thread, conferences, threads)) for thread in range(threads)]
    for thread in range(threads):
        n = 0
        with open(f"{prefix}-{thread + 1}.txt", "w") as out:
            for form in ingest_forms(set_id, conferences, total, thread, threads, first_seq):
                if n == 0 and thread == 0:
                    check_signature(public_url + PATH, form)
                out.write(line(public_url, form))
                n += 1
        counts.append(n)
    return WrkSet(prefix=prefix, per_thread=counts, lanes=lanes)
