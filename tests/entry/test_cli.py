"""The `confctl` command: migrate, rebuild-projections and serve, against the test database."""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from confctl.adapters.database import head_revision
from confctl.entry.browser_tokens import verify
from confctl.entry.cli import build_parser, main, parse_args
from confctl.entry.cli_dev import banner
from confctl.entry.settings import ApiKey, Settings
from tests.support.readiness import readiness
from tests.support.twilio_forms import AUTH_TOKEN, PUBLIC_URL, post_signed, sign, whole_call


async def test_migrate_is_idempotent(database_url: str, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    """`confctl migrate` on a database already at head changes nothing and says so."""
    monkeypatch.setenv("CONFCTL_DATABASE_URL", database_url)
    assert await asyncio.to_thread(main, ["migrate"]) == 0
    assert "migrations applied" in capsys.readouterr().out
    async with engine.connect() as conn:
        assert await conn.scalar(sa.text("SELECT version_num FROM alembic_version")) == head_revision()


async def test_rebuild_projections_restores_the_read_model(
    client: httpx.AsyncClient, database_url: str, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the read model is lost, `confctl rebuild-projections` brings every conference back from the log."""
    for cb in whole_call("CA" + "7" * 32, "CA" + "8" * 32, "CF" + "9" * 32)[:5]:
        await post_signed(client, cb.path, cb.params)
    before = (await client.get("/v1/conferences")).json()
    async with engine.begin() as conn:
        await conn.execute(sa.text("TRUNCATE conferences, call_legs"))
    monkeypatch.setenv("CONFCTL_DATABASE_URL", database_url)
    assert await asyncio.to_thread(main, ["rebuild-projections"]) == 0
    assert (await client.get("/v1/conferences")).json() == before


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_answers_and_stops_on_sigint(database_url: str, migrated_engine: AsyncEngine, tmp_path: Path) -> None:
    """`confctl serve` on CONFCTL_DATABASE_URL is ready (database reachable, migrated) and stops cleanly on Ctrl-C."""
    port = _free_port()
    env = os.environ | {"CONFCTL_DATABASE_URL": database_url, "CONFCTL_API_KEYS": "[]"}
    process = subprocess.Popen([sys.executable, "-m", "confctl.entry.cli", "serve", "--host", "127.0.0.1",
                                "--port", str(port)], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
    try:
        assert readiness(port, time.monotonic() + 30) == {"status": "ok", "detail": None}
        assert httpx.get(f"http://127.0.0.1:{port}/v1/conferences", timeout=1).status_code == 401
    finally:
        process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=20)[0].decode()
    assert process.returncode == 0, output


def _children(pid: int) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(proc.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def test_serve_with_two_workers_shares_the_port_and_stores_callbacks(database_url: str, engine: AsyncEngine,
                                                                    tmp_path: Path) -> None:
    """`confctl serve --workers 2` runs two processes on one port and one database: callbacks sent to it are
    stored once each, and Ctrl-C stops them all."""
    port = _free_port()
    env = os.environ | {"CONFCTL_DATABASE_URL": database_url, "CONFCTL_API_KEYS": "[]",
                        "CONFCTL_PUBLIC_URL": PUBLIC_URL, "CONFCTL_TWILIO_AUTH_TOKEN": AUTH_TOKEN}
    process = subprocess.Popen([sys.executable, "-m", "confctl.entry.cli", "serve", "--host", "127.0.0.1",
                                "--port", str(port), "--workers", "2"], env=env, cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and len(_children(process.pid)) < 2:
            time.sleep(0.2)
        assert readiness(port, deadline) == {"status": "ok", "detail": None}
        workers = [pid for pid in _children(process.pid)
                   if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]
        assert len(workers) == 2
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            calls = whole_call("CA" + "7" * 32, "CA" + "8" * 32, "CF" + "9" * 32)
            for callback in calls:
                sent = client.post(callback.path, data=callback.params,
                                   headers={"X-Twilio-Signature": sign(callback.path, callback.params)})
                assert sent.status_code in (200, 204), sent.text
    finally:
        process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=30)[0].decode()
    assert process.returncode == 0, output


REPO = Path(__file__).resolve().parents[2]
# Every variable an option reads; a test below keeps them out of the way.
OPTION_VARIABLES = ("CONFCTL_HOST", "CONFCTL_PORT", "PORT", "CONFCTL_WORKERS", "CONFCTL_SIMULATOR_PORT",
                    "CONFCTL_PUBLIC_URL", "CONFCTL_URL", "CONFCTL_SIMULATOR_URL", "CONFCTL_API_KEY", "CONFCTL_DATA_DIR")


@pytest.fixture
def bare(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty working folder (no .env) and none of the options' variables set."""
    for name in OPTION_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    [sub] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def test_version_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    """`confctl --version` prints the package's version and exits 0."""
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"confctl {importlib.metadata.version('confctl')}"


def test_every_option_shows_its_help_default_and_variable() -> None:
    """Every option of every command has help text naming its default and the environment variable behind it,
    and `--help` shows them."""
    commands = _commands()
    assert set(commands) == {"serve", "migrate", "rebuild-projections", "dev", "simulator", "demo"}
    for name, command in commands.items():
        rendered = " ".join(command.format_help().split())
        for action in command._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            text = action.help or ""
            assert re.search(r"\(default: .+; env: \$[A-Z_]+", text), f"{name} {action.option_strings}: {text!r}"
            assert " ".join(text.split()) in rendered


def test_options_fall_back_to_their_variables_then_defaults(bare: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A flag wins over its variable, the variable (environment, else .env) over the default; $PORT is read
    when CONFCTL_PORT is unset."""
    serve = parse_args(["serve"])
    assert (serve.host, serve.port, serve.workers) == ("0.0.0.0", 8000, 1)
    monkeypatch.setenv("PORT", "9100")
    assert parse_args(["serve"]).port == 9100
    monkeypatch.setenv("CONFCTL_PORT", "9200")
    monkeypatch.setenv("CONFCTL_HOST", "127.0.0.2")
    assert (parse_args(["serve"]).port, parse_args(["serve"]).host) == (9200, "127.0.0.2")
    assert parse_args(["serve", "--port", "9300"]).port == 9300
    (bare / ".env").write_text("CONFCTL_SIMULATOR_PORT=8123\nCONFCTL_WORKERS=3\n")
    dev = parse_args(["dev"])
    assert (dev.port, dev.simulator_port) == (9200, 8123)
    assert parse_args(["serve"]).workers == 3


def test_a_bad_variable_is_a_one_line_error_naming_it(bare: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """An option's variable that does not parse stops the command with exit 2 and one line naming the variable."""
    monkeypatch.setenv("CONFCTL_PORT", "eighty")
    with pytest.raises(SystemExit) as exited:
        parse_args(["serve"])
    assert exited.value.code == 2
    error = capsys.readouterr().err.splitlines()[-1]
    assert "CONFCTL_PORT" in error and "eighty" not in error  # named, its value not repeated


def test_the_simulator_sends_webhooks_to_the_public_url(bare: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """`confctl simulator` takes its webhook base from CONFCTL_PUBLIC_URL when --webhook-base is not given, and
    refuses to start with neither."""
    with pytest.raises(SystemExit) as exited:
        parse_args(["simulator"])
    assert exited.value.code == 2
    assert "--webhook-base" in capsys.readouterr().err
    monkeypatch.setenv("CONFCTL_PUBLIC_URL", "http://confctl:8000")
    assert parse_args(["simulator"]).webhook_base == "http://confctl:8000"


def test_demo_finds_the_dev_stack_in_the_data_dir(bare: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """`confctl demo` reads the URLs and key that `confctl dev` left in CONFCTL_DATA_DIR, wherever that is."""
    data_dir = bare / "elsewhere"
    data_dir.mkdir()
    url = f"http://127.0.0.1:{_free_port()}"  # nothing listens there: the demo names it and stops
    (data_dir / "dev.json").write_text(json.dumps({"url": url, "simulator_url": url, "api_key": "dev-0123456789"}))
    monkeypatch.setenv("CONFCTL_DATA_DIR", str(data_dir))
    assert main(["demo"]) == 1
    assert f"not reachable at {url}" in capsys.readouterr().err


def test_the_cli_names_no_file_an_installed_confctl_lacks() -> None:
    """The help of every command and the `confctl dev` banner mention no document missing from the repo and no
    path of a checkout's venv."""
    texts = [build_parser().format_help(), *(command.format_help() for command in _commands().values())]
    texts.append(banner(Settings(), "http://127.0.0.1:8010", [ApiKey(name="dev", key="dev-0123456789",
                                                                    scopes=["read"])]))
    for text in texts:
        for document in re.findall(r"[\w./-]+\.md\b", text):
            assert (REPO / document).is_file(), f"{document!r} in: {text}"
        assert ".venv" not in text, text


def test_the_dev_banner_never_prints_an_auth_token_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """An auth token the operator gave (perhaps a real account's, from TWILIO_AUTH_TOKEN) is not printed; an
    invented one is, since it is all a developer has to sign as the simulator."""
    from confctl.entry.cli_dev import shown_token, twilio_credentials

    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "f" * 32)
    env = Settings()
    given = twilio_credentials(env)
    assert given.auth_token == "f" * 32
    assert "f" * 32 not in shown_token(env, given.auth_token)
    assert "f" * 32 not in banner(env, "http://127.0.0.1:8010", None, shown_token(env, given.auth_token))
    monkeypatch.delenv("TWILIO_AUTH_TOKEN")
    monkeypatch.delenv("CONFCTL_TWILIO_AUTH_TOKEN", raising=False)
    fresh = Settings()
    invented = twilio_credentials(fresh)
    assert shown_token(fresh, invented.auth_token) == invented.auth_token


def test_the_dev_banner_links_the_console_and_wallboard_signed_in_with_the_invented_key() -> None:
    """With an invented key, the banner's console and wallboard links carry a browser token minted from it (the
    key's scopes, the longest allowed life); with keys from the environment it prints no token."""
    key = ApiKey(name="dev", key="dev-0123456789abcdef", scopes=["read", "control", "supervise"])
    settings = Settings(public_url="http://127.0.0.1:8000", api_keys=[key])
    lines = banner(settings, "http://127.0.0.1:8010", [key])
    found = re.findall(r"http://127\.0\.0\.1:8000/(console|wallboard)#token=(\S+)", lines)
    assert [page for page, _ in found] == ["console", "wallboard"], lines
    owner, expires = verify(found[0][1], [key], time.time())
    assert owner.name == "dev" and set(owner.scopes) == set(key.scopes)
    assert abs(expires - time.time() - settings.token_max_ttl_s) <= 5
    from_env = banner(settings, "http://127.0.0.1:8010", None)
    assert "/console" in from_env and "#token=" not in from_env
