"""One webhook's attempts, as Twilio makes them under the URL's connection overrides (`overrides.py`).

Each attempt sends the same signed request. Its connect and read timeouts are the overrides' `ct` and
`rt`, cut to what is left of the total budget `tt` (never more than Twilio's 15 s); a failed attempt is
classed as Twilio's retry policy names failures (`ct`, `rt`, `4xx`, `5xx`) and retried while `rc` and the
budget allow. What the page does not class is never retried: a partial response (the page says so), an
attempt that ran out of total time (`tt`), and any other transport error (`other`: the connection closed
before an answer, a write timeout; the page is silent, and not retrying is the less convenient reading).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx

from confctl.simulator.overrides import ConnectionOverrides
from confctl.simulator.signing import WebhookRequest

# A timeout that fires this close to the end of the total budget was the budget's, not the phase's own.
_BUDGET_SLACK_S = 0.005


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try: its answer (status None when there was none), how it failed, and whether a retry follows."""

    number: int  # from 1
    edge: str
    status: int | None
    text: str
    error: str | None
    failure: str | None  # ct | rt | 4xx | 5xx | tt | partial | other; None: answered 1xx-3xx
    retried: bool
    elapsed_ms: float
    content_type: str = ""  # of the answer, if any (a media fetch plays audio or TwiML by it)


async def attempts(client: httpx.AsyncClient, request: WebhookRequest, overrides: ConnectionOverrides) -> list[Attempt]:
    """Deliver `request` as Twilio would; the attempts made, in order (the last one is the outcome)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + overrides.budget_s
    made: list[Attempt] = []
    while True:
        number = len(made) + 1
        began = loop.time()
        status, text, error, failure, content_type = await _attempt(client, request, overrides, deadline - began)
        now = loop.time()
        if failure in ("ct", "rt") and deadline - now <= _BUDGET_SLACK_S:
            failure = "tt"
        retried = (
            failure is not None
            and number <= overrides.retry_count
            and overrides.retries_on(failure)
            and now < deadline
        )
        made.append(Attempt(number, overrides.edge_for(number), status, text, error, failure, retried,
                            round((now - began) * 1000, 1), content_type))
        if not retried:
            return made
        # The page gives no pause between retries: the next attempt starts at once. (For a receiver that is
        # restarting, the less convenient reading: the retries do not wait for it to come back.)


async def _attempt(
    client: httpx.AsyncClient, request: WebhookRequest, overrides: ConnectionOverrides, left_s: float
) -> tuple[int | None, str, str | None, str | None, str]:
    """(status, body, error, failure class, content type) of one try with `left_s` of the total budget left."""
    connect_s = min(overrides.connect_timeout_ms / 1000, left_s)
    read_s = min(overrides.read_timeout_ms / 1000, left_s)
    timeout = httpx.Timeout(connect=connect_s, read=read_s, write=read_s, pool=connect_s)
    built = client.build_request(request.method, request.url, content=request.body, headers=request.headers,
                                 timeout=timeout)
    # httpx enforces the phases on a real socket; a transport that enforces none (ASGITransport) still has
    # the wait for the answer's head bounded by both phases together, and by the budget.
    head_s = min(connect_s + read_s, left_s)
    loop = asyncio.get_running_loop()
    began = loop.time()
    try:
        async with asyncio.timeout(head_s):
            response = await client.send(built, stream=True)
    except TimeoutError:
        return None, "", f"no answer within {head_s:.3f} s", "tt" if head_s >= left_s else "rt", ""
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:  # refused, unreachable, TLS handshake failed
        return None, "", repr(exc), "ct", ""
    except httpx.ReadTimeout as exc:
        return None, "", repr(exc), "rt", ""
    except httpx.HTTPError as exc:
        return None, "", repr(exc), "other", ""
    content_type = response.headers.get("content-type", "")
    try:
        async with asyncio.timeout(max(left_s - (loop.time() - began), 0.0)):
            await response.aread()
    except (TimeoutError, httpx.HTTPError) as exc:
        return response.status_code, "", repr(exc) or "total time out while reading the answer", "partial", content_type
    finally:
        await response.aclose()
    status = response.status_code
    failure = "4xx" if 400 <= status < 500 else "5xx" if status >= 500 else None
    return status, response.text, None, failure, content_type
