"""`confctl serve` behind a reverse proxy: `--forwarded-allow-ips` says whose X-Forwarded-* headers count, and
`--root-path` serves confctl under a prefix the proxy strips. Twilio's signatures are checked against
CONFCTL_PUBLIC_URL (prefix included), never against what the proxy forwards.

The app runs in a real uvicorn server configured exactly as `serve` configures it (cli.uvicorn_options), on a
real socket, reached over HTTP as a proxy on this machine would reach it.
"""

from __future__ import annotations

import asyncio
import contextlib
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy.ext.asyncio import AsyncEngine

from confctl.entry.app import create_app
from confctl.entry.cli import parse_args, uvicorn_options
from confctl.entry.cli_dev import listen
from confctl.entry.settings import ApiKey, Settings
from tests.support.twilio_forms import ACCOUNT_SID, AUTH_TOKEN, sign, voice

PUBLIC = "https://confctl.example.com/confctl"  # the proxy's URL: Twilio calls it, the proxy strips /confctl
KEY = "proxy-test-key-123456"


@contextlib.asynccontextmanager
async def serving(engine: AsyncEngine, *serve_args: str) -> AsyncIterator[str]:
    """The app under uvicorn with the options `confctl serve SERVE_ARGS` gives it; yields its base URL."""
    options: dict[str, Any] = uvicorn_options(parse_args(["serve", *serve_args]))
    settings = Settings(database_url=None, twilio_account_sid=ACCOUNT_SID, twilio_auth_token=AUTH_TOKEN,
                        public_url=PUBLIC, api_keys=[ApiKey(name="admin", key=KEY, scopes=["read"])])
    sock = listen("127.0.0.1", 0)
    config = uvicorn.Config(create_app(settings, engine=engine), **(options | {"host": "127.0.0.1", "port": 0}))
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        for _ in range(250):
            if server.started or task.done():
                break
            await asyncio.sleep(0.02)
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


def test_serve_hands_the_proxy_options_to_uvicorn(monkeypatch: pytest.MonkeyPatch) -> None:
    """--forwarded-allow-ips and --root-path (or their variables) reach uvicorn, with proxy headers on."""
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    monkeypatch.delenv("CONFCTL_FORWARDED_ALLOW_IPS", raising=False)
    monkeypatch.delenv("CONFCTL_ROOT_PATH", raising=False)
    defaults = uvicorn_options(parse_args(["serve"]))
    assert (defaults["proxy_headers"], defaults["forwarded_allow_ips"], defaults["root_path"]) == (
        True, "127.0.0.1,::1", "")
    given = uvicorn_options(parse_args(["serve", "--forwarded-allow-ips", "10.0.0.0/8", "--root-path", "/confctl"]))
    assert (given["forwarded_allow_ips"], given["root_path"]) == ("10.0.0.0/8", "/confctl")
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "*")
    monkeypatch.setenv("CONFCTL_ROOT_PATH", "/cc")
    from_env = uvicorn_options(parse_args(["serve"]))
    assert (from_env["forwarded_allow_ips"], from_env["root_path"]) == ("*", "/cc")


async def test_a_webhook_through_a_proxy_that_strips_the_prefix_is_accepted(engine: AsyncEngine) -> None:
    """Twilio signs PUBLIC/twilio/voice; the proxy forwards /twilio/voice; with --root-path /confctl the signature
    holds, the TwiML's callbacks point at PUBLIC, and a bad signature is still refused."""
    callback = voice("CA" + "7" * 32)
    signature = sign(callback.path, callback.params, public_url=PUBLIC)
    async with serving(engine, "--root-path", "/confctl") as base, httpx.AsyncClient(base_url=base) as client:
        answer = await client.post(callback.path, data=callback.params, headers={"X-Twilio-Signature": signature})
        assert answer.status_code == 200, answer.text
        conference = ET.fromstring(answer.text).find("./Dial/Conference")
        assert conference is not None
        assert conference.attrib["statusCallback"].startswith(f"{PUBLIC}/twilio/conference-status")
        forged = await client.post(callback.path, data=callback.params | {"From": "+15550009999"},
                                   headers={"X-Twilio-Signature": signature})
        assert forged.status_code == 403
        docs = await client.get("/docs")
        assert "/confctl/openapi.json" in docs.text, "the browser asks the proxy, prefix included"


@pytest.mark.parametrize(("trusted", "scheme"), [("127.0.0.1", "https"), ("10.9.9.9", "http")])
async def test_forwarded_headers_count_only_from_the_allowed_proxies(engine: AsyncEngine, trusted: str,
                                                                     scheme: str) -> None:
    """X-Forwarded-Proto from an allowed address makes confctl's own URLs (here a redirect) https; from any
    other it is ignored."""
    async with serving(engine, "--forwarded-allow-ips", trusted) as base, httpx.AsyncClient(base_url=base) as client:
        answer = await client.get("/v1/conferences/", headers={"X-Forwarded-Proto": "https",
                                                               "X-Forwarded-For": "203.0.113.7",
                                                               "Authorization": f"Bearer {KEY}"})
        assert answer.status_code in (307, 308), answer.text
        assert answer.headers["location"].startswith(f"{scheme}://"), answer.headers["location"]
