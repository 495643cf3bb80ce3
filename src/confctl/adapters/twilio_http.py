"""An httpx-based async HTTP client for the twilio SDK (`twilio.rest.Client(..., http_client=...)`).

Why not the SDK's own `AsyncTwilioHttpClient`: it needs a running event loop to be constructed, ignores
its constructor timeout (requests can hang forever) and retries POSTs, which can dial a participant twice.
This client fixes all three, and adds the one seam tests and `confctl dev` need: `base_url=` points
every SDK URL at another host (the simulator), and `transport=` lets tests route requests to an ASGI app
without a network.

Transport errors (`httpx.TransportError`) are raised as they are; the gateway decides what is retried
and turns them into `TwilioUnavailable`.
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from twilio.http import AsyncHttpClient
from twilio.http.request import Request as TwilioRequest
from twilio.http.response import Response as TwilioResponse

_LOGGER = logging.getLogger("confctl.twilio.http")


class HttpxTwilioHttpClient(AsyncHttpClient):  # type: ignore[misc]  # twilio is untyped
    """The twilio SDK's HTTP layer on `httpx.AsyncClient`, with real timeouts and a base-URL seam."""

    def __init__(
        self,
        *,
        base_url: str | None = None,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        connect_retries: int = 1,
        logger: logging.Logger = _LOGGER,
    ) -> None:
        """Build the client; no event loop is needed (httpx opens connections lazily).

        `base_url` replaces the scheme and host of every URL the SDK builds (its path is put in front
        of the SDK's path); `timeout` (seconds) is the default for every request; `transport` overrides
        the network transport (tests pass `httpx.ASGITransport` or `httpx.MockTransport`), otherwise
        connection set-up is retried `connect_retries` times, which is safe for every request because
        nothing has been sent yet.
        """
        super().__init__(logger, True, timeout)
        self.timeout: float = timeout
        self._rewrite_to = urlsplit(base_url) if base_url else None
        if transport is None:
            transport = httpx.AsyncHTTPTransport(retries=connect_retries)
        self._http = httpx.AsyncClient(timeout=timeout, transport=transport)

    def target(self, url: str) -> str:
        """The URL actually requested: `url` moved onto `base_url`, path and query kept."""
        if self._rewrite_to is None:
            return url
        parts = urlsplit(url)
        base = self._rewrite_to
        return urlunsplit((base.scheme, base.netloc, base.path.rstrip("/") + parts.path, parts.query, parts.fragment))

    async def request(
        self,
        method: str,
        uri: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109  # the SDK's HttpClient signature
        allow_redirects: bool = False,
    ) -> TwilioResponse:
        """Send one request as the SDK asks and return the SDK's Response type."""
        if timeout is not None and timeout <= 0:
            # Same contract as the SDK's clients: a zero timeout would mean "fail at once".
            raise ValueError(timeout)
        url = self.target(uri)
        self._test_only_last_request = TwilioRequest(
            method=method.upper(), url=url, auth=auth, params=params, data=data, headers=headers
        )
        self.log_request({"method": method.upper(), "url": url, "params": params, "headers": headers})
        response = await self._http.request(
            method.upper(),
            url,
            params=_httpx_params(params),
            # The SDK passes {} on GET/DELETE; sending it would add an empty form body and a Content-Type.
            data=_httpx_data(data),
            headers=headers,
            auth=httpx.BasicAuth(*auth) if auth else httpx.USE_CLIENT_DEFAULT,
            timeout=timeout if timeout is not None else self.timeout,
            follow_redirects=allow_redirects,
        )
        self.log_response(response.status_code, response)
        result = TwilioResponse(response.status_code, response.text, headers=response.headers)
        self._test_only_last_response = result
        return result

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self._http.aclose()

    # The SDK's own async client calls it `close`; keep both spellings.
    close = aclose

    async def __aenter__(self) -> HttpxTwilioHttpClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def _httpx_params(params: dict[str, object] | None) -> Any:
    """Query parameters for httpx, or None so that no stray `?` is added."""
    return params or None


def _httpx_data(data: dict[str, object] | None) -> Any:
    """Form fields for httpx (lists become repeated keys), or None when there are none."""
    return data or None
