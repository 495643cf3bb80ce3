"""What Twilio fetches to play into a conference: wait music, hold music and announcements.

- `waitUrl` / `WaitUrl` with `waitMethod` / `WaitMethod` (default POST) when a participant waits for the
  conference to start; `holdUrl` / `HoldUrl` with `HoldMethod` (default GET) when it is put on hold;
  `AnnounceUrl` with `AnnounceMethod` (default POST) for an announcement (`announcements.py`). Each is a
  `Fetch` of its kind through the delivery queue, so it shows in the delivery log like a voice request; its
  answer comes back to `World.media_fetched` under the token the Fetch carries (`State.media`).
- No URL (or an empty one) fetches nothing: without a waitUrl Twilio GETs its own classical playlist, and ''
  plays silence (the `<Conference>` page); neither can fail here. Nor can Twilio's default hold music.
- Playable (`outcome`): the `<Conference>` page says these URLs "may return an MP3 file, a WAV file, or a TwiML
  document", and that document may hold only `<Play>`, `<Say>`, `<Pause>` and `<Redirect>` (error 13238
  otherwise). Audio is what the `<Play>` page lists as supported MIME types; TwiML is what "TwiML for
  Programmable Voice" runs as TwiML (text/xml, application/xml, text/html; text/plain when it parses). Plain
  text that is not TwiML is refused, although a voice request would read it aloud: the `<Conference>` page
  names only audio and TwiML (the less convenient reading). A `<Redirect>` is not followed (an empty one loops
  the same document forever); the document's own verbs give its length.
- The parameters sent are not documented for these fetches (the `<Play>` page says Twilio sends none of its
  standard ones to `<Play>` URLs): the simulator sends the call's usual voice-request parameters, or for a
  conference announcement AccountSid, ConferenceSid and FriendlyName, so a GET carries them in its query.
"""

from __future__ import annotations

from dataclasses import dataclass

from confctl.simulator.model import calls
from confctl.simulator.model.effects import Fetch
from confctl.simulator.model.records import Conference, Participant
from confctl.simulator.model.state import API_VERSION, State
from confctl.simulator.model.twiml import Pause, Play, Say, TwimlError, Unsupported, parse_twiml

# The <Play> page's "supported audio file types".
AUDIO_TYPES = frozenset({
    "audio/mpeg", "audio/wav", "audio/wave", "audio/x-wav", "audio/aiff", "audio/x-aifc", "audio/x-aiff",
    "audio/x-gsm", "audio/gsm", "audio/ulaw",
})
_TWIML_TYPES = frozenset({"text/xml", "application/xml", "text/html"})
AUDIO_S = 1.0  # the simulator downloads no audio: a file plays for one second, as a `<Play>` does

# Twilio's error codes for what went wrong (logged as alerts: Twilio shows them in its Debugger).
HTTP_RETRIEVAL_FAILURE = 11200
DOCUMENT_PARSE_FAILURE = 12100
INVALID_CONTENT_TYPE = 12300
INVALID_VERB = 13238


@dataclass(frozen=True, slots=True)
class MediaRequest:
    """One media fetch on its way: what it is for, so its answer finds its participant (or room) again."""

    token: int
    kind: str  # wait | hold | announce
    conference_sid: str
    call_sid: str | None  # None: an announcement to the whole conference
    url: str
    method: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a fetched answer plays: for `seconds`, or not at all (then Twilio's error code and why)."""

    seconds: float | None
    error_code: int | None = None
    reason: str | None = None

    @property
    def playable(self) -> bool:
        return self.seconds is not None


def method_of(value: str | None, default: str) -> str | None:
    """A `*Method` value as Twilio takes it (GET or POST, any case; `default` when unset), None when invalid."""
    if not value:
        return default
    upper = value.strip().upper()
    return upper if upper in ("GET", "POST") else None


def request(state: State, kind: str, conference: Conference, participant: Participant | None, url: str,
            method: str) -> MediaRequest:
    """Fetch `url` for `participant` (None: the whole room); the answer comes back by the request's token."""
    state.media_tokens += 1
    token = state.media_tokens
    call = state.calls.get(participant.call_sid) if participant is not None else None
    if call is not None:
        params = tuple(calls.base_params(call))
    else:
        params = (("AccountSid", conference.account_sid), ("ConferenceSid", conference.sid),
                  ("FriendlyName", conference.friendly_name), ("ApiVersion", API_VERSION))
    pending = MediaRequest(token, kind, conference.sid, participant.call_sid if participant else None, url, method)
    state.media[token] = pending
    state.emit(Fetch(pending.call_sid or conference.sid, token, url, method, params, kind=kind))
    return pending


def wait(state: State, conference: Conference, participant: Participant) -> None:
    """The participant waits for the conference to start: Twilio fetches its waitUrl (if it has one)."""
    if participant.wait_url:
        request(state, "wait", conference, participant, participant.wait_url, participant.wait_method)


def hold(state: State, conference: Conference, participant: Participant) -> None:
    """The participant was put on hold: Twilio fetches its holdUrl (if it has one)."""
    if participant.hold_url:
        request(state, "hold", conference, participant, participant.hold_url, participant.hold_method)


def outcome(status_code: int | None, body: str, content_type: str) -> Outcome:
    """Whether (and how long) Twilio can play what a media URL answered."""
    if status_code is None or not 200 <= status_code < 300:
        answer = "no answer" if status_code is None else f"HTTP {status_code}"
        return Outcome(None, HTTP_RETRIEVAL_FAILURE, f"the request failed ({answer})")
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind in AUDIO_TYPES:
        return Outcome(AUDIO_S)
    if kind not in _TWIML_TYPES and kind != "text/plain":
        return Outcome(None, INVALID_CONTENT_TYPE, f"Content-Type {kind or '(none)'} is neither audio nor TwiML")
    try:
        verbs = parse_twiml(body)
    except TwimlError as exc:
        if kind == "text/plain":
            return Outcome(None, INVALID_CONTENT_TYPE, "plain text that is not TwiML")
        return Outcome(None, DOCUMENT_PARSE_FAILURE, str(exc))
    seconds = 0.0
    for verb in verbs:
        if isinstance(verb, Say | Play | Pause):
            seconds += verb.seconds
        elif not (isinstance(verb, Unsupported) and verb.tag == "Redirect"):
            name = verb.tag if isinstance(verb, Unsupported) else type(verb).__name__.replace("DialConference", "Dial")
            return Outcome(None, INVALID_VERB, f"<{name}> is not allowed (only Play, Say, Pause and Redirect)")
    return Outcome(seconds)
