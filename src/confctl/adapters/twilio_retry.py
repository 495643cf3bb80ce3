"""When a Twilio request is tried again, and how its failures become the port's two exceptions.

Two kinds of request:
- *repeatable* (GET, DELETE, and updates that set an absolute state such as Hold=true or
  Status=completed): sending it twice has the same effect as once, so it is retried on every transient
  failure: transport errors (connect, timeout, dropped connection), 5xx and 429.
- *create* (CreateParticipant, CreateCall): a second copy would dial a second phone. It is retried only
  when Twilio cannot have acted on it: the connection was never established (`httpx.ConnectError`,
  `ConnectTimeout`, `PoolTimeout`) or Twilio answered 429 (rate limited: refused before processing).
  A timeout or 5xx after sending is not retried; the caller must find out what happened (fetch by label).

4xx other than 429 are never retried. stamina does the backoff; its test mode (`stamina.set_testing`)
removes the sleeps in tests.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import httpx
import stamina
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.base.version import Version
from twilio.http.response import Response

from confctl.service.gateway import TwilioError, TwilioUnavailable

T = TypeVar("T")

# Failures in which the request never left this process.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# The SDK prefixes Twilio's message with its own ("Unable to create record: ..."); callers want Twilio's.
_SDK_PREFIX = re.compile(r"^Unable to (?:fetch|create|update|delete) (?:record|page): ")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try: at most `attempts` tries within `timeout_s` overall, exponential backoff."""

    attempts: int = 3
    timeout_s: float = 30.0
    wait_initial_s: float = 0.2
    wait_max_s: float = 2.0


def _status(exc: BaseException) -> int | None:
    if isinstance(exc, TwilioRestException | TwilioServiceException):
        return int(exc.status)
    return None


def is_transient(exc: Exception) -> bool:
    """Whether a repeatable request that failed with `exc` is worth sending again."""
    if isinstance(exc, httpx.TransportError):
        return True
    status = _status(exc)
    return status is not None and (status >= 500 or status == 429)


def is_unsent(exc: Exception) -> bool:
    """Whether a create that failed with `exc` certainly had no effect at Twilio."""
    return isinstance(exc, _NOT_SENT) or _status(exc) == 429


async def call_twilio(policy: RetryPolicy, what: str, send: Callable[[], Awaitable[T]], *, repeatable: bool) -> T:
    """Run `send` under the retry rules for its kind and translate what still fails.

    Raises TwilioError when Twilio refused (4xx) and TwilioUnavailable when it could not be reached or
    kept failing (transport errors, 5xx, 429).
    """
    caller = stamina.AsyncRetryingCaller(
        attempts=policy.attempts,
        timeout=policy.timeout_s,
        wait_initial=policy.wait_initial_s,
        wait_max=policy.wait_max_s,
    )

    async def send_once() -> T:
        try:
            return await send()
        except TwilioException as exc:
            raise _with_status(exc) from exc

    try:
        return await caller(is_transient if repeatable else is_unsent, send_once)
    except httpx.TransportError as exc:
        raise TwilioUnavailable(f"{what}: {type(exc).__name__}: {exc}") from exc
    except (TwilioRestException, TwilioServiceException) as exc:
        raise translate(exc, what) from exc


def _with_status(exc: TwilioException) -> TwilioException:
    """List pages fail with a bare `TwilioException("Unable to fetch page", response)`; give it a status."""
    if isinstance(exc, TwilioRestException | TwilioServiceException):
        return exc
    response = exc.args[1] if len(exc.args) == 2 else None
    if not isinstance(response, Response):
        return exc
    wrapped: TwilioException = Version.exception("GET", "", response, str(exc.args[0]))
    return wrapped


def translate(exc: TwilioRestException | TwilioServiceException, what: str) -> Exception:
    """The port's exception for an error answer from Twilio."""
    status = int(exc.status)
    if isinstance(exc, TwilioServiceException):
        code, message = exc.code, exc.detail or exc.title
    else:
        code, message = exc.code, _SDK_PREFIX.sub("", str(exc.msg))
    code = int(code) if code is not None else None
    if status >= 500 or status == 429:
        return TwilioUnavailable(f"{what}: Twilio {status} (code {code}): {message}")
    return TwilioError(status, code, str(message))
