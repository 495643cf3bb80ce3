"""Settings as an operator gives them: Twilio's own variable names, an API key for REST, `$PORT`, a data directory
that does not depend on the working folder, PostgreSQL URLs in their usual spellings, `.env` for every setting,
and an `.env.example` that lists them all."""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from confctl.adapters.database import create_engine
from confctl.adapters.pg_pool import connect_kwargs
from confctl.adapters.twilio_http import HttpxTwilioHttpClient
from confctl.entry.cli import build_parser, main
from confctl.entry.cli_dev import write_dev_credentials
from confctl.entry.cli_options import FromEnvironment
from confctl.entry.demo import dev_defaults
from confctl.entry.settings import ApiKey, Settings, env_names
from confctl.entry.twilio_client import twilio_gateway, twilio_problems
from confctl.service.gateway import TwilioError
from confctl.simulator import SimulatorConfig, create_simulator
from tests.support.readiness import readiness

REPO = Path(__file__).resolve().parents[2]
ACCOUNT = "AC" + "5" * 32
TOKEN = "the-account-auth-token"
KEY_SID = "SK" + "6" * 32
KEY_SECRET = "the-api-key-secret"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No confctl or Twilio variable and no `.env` (the working folder is an empty one); the folder is returned."""
    for name in list(os.environ):
        if name.startswith(("CONFCTL_", "TWILIO_")) or name in ("PORT", "XDG_DATA_HOME"):
            monkeypatch.delenv(name)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _child_env(**settings: str) -> dict[str, str]:
    """This environment without any confctl or Twilio setting, plus `settings`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CONFCTL_", "TWILIO_")) and k not in ("PORT", "XDG_DATA_HOME")}
    return env | settings


# Twilio's own variable names


@pytest.mark.usefixtures("clean_env")
def test_twilio_account_variables_are_fallbacks_for_the_confctl_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    """TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN are used when the CONFCTL_ ones are unset; the CONFCTL_ ones win."""
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", ACCOUNT)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TOKEN)
    settings = Settings()
    assert (settings.twilio_account_sid, settings.twilio_auth_token) == (ACCOUNT, TOKEN)
    assert {"twilio_account_sid", "twilio_auth_token"} <= settings.model_fields_set  # `confctl dev` uses them

    monkeypatch.setenv("CONFCTL_TWILIO_ACCOUNT_SID", "AC" + "7" * 32)
    monkeypatch.setenv("CONFCTL_TWILIO_AUTH_TOKEN", "confctl-token")
    settings = Settings()
    assert (settings.twilio_account_sid, settings.twilio_auth_token) == ("AC" + "7" * 32, "confctl-token")


# An API key for REST; the auth token for signatures


@dataclass
class Recorder(httpx.AsyncBaseTransport):
    """A transport to the simulator's app that keeps each request's Basic auth user name."""

    inner: httpx.AsyncBaseTransport
    users: list[str]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        import base64

        encoded = request.headers.get("authorization", "").removeprefix("Basic ")
        self.users.append(base64.b64decode(encoded).decode().partition(":")[0])
        return await self.inner.handle_async_request(request)


@pytest.fixture
async def simulator() -> AsyncIterator[httpx.AsyncBaseTransport]:
    """The simulator playing ACCOUNT, which has the API key KEY_SID."""
    config = SimulatorConfig(ACCOUNT, TOKEN, "http://confctl.test", time_scale=0.01, api_keys={KEY_SID: KEY_SECRET})
    sim = create_simulator(config)
    try:
        yield httpx.ASGITransport(app=sim.app)
    finally:
        await sim.aclose()


async def _list_conferences(settings: Settings, transport: httpx.AsyncBaseTransport) -> list[str]:
    """List the conferences with the gateway confctl builds from `settings`; the user names it sent."""
    users: list[str] = []
    async with HttpxTwilioHttpClient(base_url="http://sim.test", transport=Recorder(transport, users)) as http:
        gateway = twilio_gateway(settings, http_client=http)
        await gateway.list_conferences()
    return users


async def test_rest_requests_authenticate_with_the_api_key_when_one_is_set(
    simulator: httpx.AsyncBaseTransport,
) -> None:
    """With CONFCTL_TWILIO_API_KEY / _SECRET, REST requests use them (user SK…); without, the account and token."""
    with_key = Settings(twilio_account_sid=ACCOUNT, twilio_auth_token="", twilio_api_key=KEY_SID,
                        twilio_api_secret=KEY_SECRET)
    assert await _list_conferences(with_key, simulator) == [KEY_SID]
    with_token = Settings(twilio_account_sid=ACCOUNT, twilio_auth_token=TOKEN)
    assert await _list_conferences(with_token, simulator) == [ACCOUNT]


async def test_the_simulator_refuses_an_api_key_with_the_wrong_secret(simulator: httpx.AsyncBaseTransport) -> None:
    """As Twilio: an API key authenticates with its own secret only (401, code 20003), not with the auth token."""
    for secret in ("not-the-secret", TOKEN):
        wrong = Settings(twilio_account_sid=ACCOUNT, twilio_api_key=KEY_SID, twilio_api_secret=secret)
        with pytest.raises(TwilioError) as refused:
            await _list_conferences(wrong, simulator)
        assert (refused.value.status, refused.value.code) == (401, 20003)


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ({}, None),  # nothing configured: not talking to Twilio at all (a warning at start-up)
        ({"twilio_account_sid": ACCOUNT, "twilio_auth_token": TOKEN}, None),
        ({"twilio_account_sid": ACCOUNT, "twilio_auth_token": TOKEN, "twilio_api_key": KEY_SID,
          "twilio_api_secret": KEY_SECRET}, None),
        ({"twilio_account_sid": ACCOUNT}, "CONFCTL_TWILIO_AUTH_TOKEN"),
        ({"twilio_account_sid": ACCOUNT, "twilio_api_key": KEY_SID, "twilio_api_secret": KEY_SECRET},
         "CONFCTL_TWILIO_AUTH_TOKEN"),
        ({"twilio_account_sid": ACCOUNT, "twilio_auth_token": TOKEN, "twilio_api_key": KEY_SID},
         "CONFCTL_TWILIO_API_SECRET"),
        ({"twilio_account_sid": ACCOUNT, "twilio_auth_token": TOKEN, "twilio_api_secret": KEY_SECRET},
         "CONFCTL_TWILIO_API_KEY"),
        ({"twilio_account_sid": ACCOUNT, "twilio_auth_token": TOKEN, "twilio_api_key": ACCOUNT,
          "twilio_api_secret": KEY_SECRET}, "CONFCTL_TWILIO_API_KEY"),
    ],
)
@pytest.mark.usefixtures("clean_env")
def test_twilio_credentials_that_cannot_work_are_named(given: dict[str, str], problem: str | None) -> None:
    """An account without its auth token (webhooks unverifiable, even with an API key), half an API key, or an API
    key that is not an SK… SID is one line naming the variable; complete credentials, or none, are no problem."""
    problems = twilio_problems(Settings(**given))  # type: ignore[arg-type]
    if problem is None:
        assert problems == []
    else:
        assert len(problems) == 1 and problems[0].startswith(problem), problems


def test_serve_refuses_to_start_when_it_could_verify_no_webhook(database_url: str, tmp_path: Path) -> None:
    """`confctl serve` with an account and an API key but no auth token exits 2 at once with one line naming
    CONFCTL_TWILIO_AUTH_TOKEN, instead of answering every Twilio webhook 403."""
    env = _child_env(CONFCTL_DATABASE_URL=database_url, CONFCTL_TWILIO_ACCOUNT_SID=ACCOUNT,
                     CONFCTL_TWILIO_API_KEY=KEY_SID, CONFCTL_TWILIO_API_SECRET=KEY_SECRET)
    process = subprocess.Popen([sys.executable, "-m", "confctl.entry.cli", "serve", "--host", "127.0.0.1",
                                "--port", str(_free_port())], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        out, err = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
        pytest.fail(f"serve started without a way to check webhook signatures:\n{out}{err}")
    assert process.returncode == 2, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "CONFCTL_TWILIO_AUTH_TOKEN" in lines[0], err


# The data directory


def test_the_data_directory_does_not_depend_on_the_working_folder(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Unset, CONFCTL_DATA_DIR is $XDG_DATA_HOME/confctl, else ~/.local/share/confctl, from whatever folder; a
    leading `~` in it is the home folder (a `.env` file is not expanded by a shell)."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert Settings().data_dir == tmp_path / "home" / ".local" / "share" / "confctl"
    monkeypatch.chdir(tmp_path)
    assert Settings().data_dir == tmp_path / "home" / ".local" / "share" / "confctl"
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert Settings().data_dir == tmp_path / "xdg" / "confctl"
    monkeypatch.setenv("XDG_DATA_HOME", "relative")  # the XDG spec: a relative path is ignored
    assert Settings().data_dir == tmp_path / "home" / ".local" / "share" / "confctl"
    monkeypatch.setenv("CONFCTL_DATA_DIR", "~/confctl-data")
    assert Settings().data_dir == tmp_path / "home" / "confctl-data"


def test_demo_finds_what_dev_wrote_from_any_folder(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`confctl demo` reads dev.json in the data directory `confctl dev` wrote it to, not in its working folder."""
    monkeypatch.setenv("CONFCTL_DATA_DIR", str(tmp_path / "data"))
    key = ApiKey(name="dev", key="dev-key-1234567", scopes=["read", "control", "supervise"])
    write_dev_credentials(Settings(public_url="http://127.0.0.1:8123", api_keys=[key]), "http://127.0.0.1:8124")
    assert (tmp_path / "data" / "dev.json").stat().st_mode & 0o077 == 0
    monkeypatch.chdir(tmp_path)  # elsewhere
    assert dev_defaults() == {"url": "http://127.0.0.1:8123", "simulator_url": "http://127.0.0.1:8124",
                              "api_key": "dev-key-1234567"}


# The database URL


@pytest.mark.parametrize(
    ("given", "normalised"),
    [
        ("postgresql://u:p%40ss@db.example.com:5432/confctl", "postgresql+asyncpg://u:p%40ss@db.example.com:5432/confctl"),
        ("postgres://u:p@db.example.com/confctl", "postgresql+asyncpg://u:p@db.example.com/confctl"),
        ("postgresql+asyncpg://u:p@db.example.com/confctl", "postgresql+asyncpg://u:p@db.example.com/confctl"),
        ("POSTGRES://u@db.example.com/confctl", "postgresql+asyncpg://u@db.example.com/confctl"),
        ("postgresql://u@db.example.com/confctl?sslmode=verify-full",
         "postgresql+asyncpg://u@db.example.com/confctl?ssl=verify-full"),
        ("postgresql+asyncpg://u@/confctl?host=/run/postgresql&ssl=disable",
         "postgresql+asyncpg://u@/confctl?host=%2Frun%2Fpostgresql&ssl=disable"),
    ],
)
@pytest.mark.usefixtures("clean_env")
def test_postgresql_urls_are_normalised_to_asyncpg(
    monkeypatch: pytest.MonkeyPatch, given: str, normalised: str
) -> None:
    """postgresql://, postgres:// and postgresql+asyncpg:// all mean asyncpg; libpq's sslmode becomes asyncpg's ssl."""
    monkeypatch.setenv("CONFCTL_DATABASE_URL", given)
    assert Settings().database_url == normalised


@pytest.mark.usefixtures("clean_env")
def test_an_empty_database_url_means_the_embedded_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """CONFCTL_DATABASE_URL= (empty, as in a copied `.env.example`) is unset: the embedded PostgreSQL."""
    monkeypatch.setenv("CONFCTL_DATABASE_URL", "")
    assert Settings().database_url is None


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("mysql://u:p@db.example.com/confctl", "mysql"),
        ("postgresql+psycopg2://u:p@db.example.com/confctl", "psycopg2"),
        ("sqlite:///confctl.db", "sqlite"),
        ("db.example.com:5432", "not a database URL"),
        ("postgresql://u@db.example.com/confctl?sslmode=sometimes", "sslmode"),
        ("postgresql://u@db.example.com/confctl?sslrootcert=/etc/ca.pem&sslmode=verify-full", "PGSSLROOTCERT"),
        ("postgresql://u@db.example.com/confctl?application_name=confctl", "application_name"),
        ("postgresql://u@db.example.com/confctl?sslmode=require&ssl=require", "sslmode"),
    ],
)
@pytest.mark.usefixtures("clean_env")
def test_any_other_database_url_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], given: str, says: str
) -> None:
    """Another scheme, or a query parameter asyncpg cannot take, stops the command with exit code 2 and one line
    on stderr naming CONFCTL_DATABASE_URL: no traceback, and no part of the URL (it may hold a password)."""
    monkeypatch.setenv("CONFCTL_DATABASE_URL", given)
    assert main(["migrate"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("confctl: CONFCTL_DATABASE_URL: ") and says in err, err
    assert "db.example.com" not in err


async def test_a_libpq_url_with_sslmode_reaches_the_database(database_url: str) -> None:
    """The test database's URL written the libpq way (postgresql://…?sslmode=…) connects, through SQLAlchemy and
    through confctl's own asyncpg pool, with the SSL mode given to asyncpg rather than dropped."""
    libpq = make_url(database_url).set(drivername="postgresql").update_query_dict({"sslmode": "prefer"})
    url = Settings(database_url=libpq.render_as_string(hide_password=False)).database_url
    assert url is not None
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            assert await conn.scalar(sa.text("SELECT 1")) == 1
        kwargs = connect_kwargs(engine)
        assert kwargs["ssl"] == "prefer"
        connection = await asyncpg.connect(**kwargs)
        assert await connection.fetchval("SELECT 1") == 1
        await connection.close()
    finally:
        await engine.dispose()


# .env, logging and $PORT


def test_every_setting_is_read_from_the_env_file(clean_env: Path) -> None:
    """`.env` in the working folder gives every setting: CONFCTL_LOG_* too, and Twilio's own names."""
    (clean_env / ".env").write_text("CONFCTL_LOG_LEVEL=debug\nCONFCTL_LOG_JSON=true\nTWILIO_AUTH_TOKEN=from-dotenv\n"
                                    "CONFCTL_RECONCILE_S=7\n")
    settings = Settings()
    assert (settings.log_level, settings.log_json) == ("DEBUG", True)
    assert (settings.twilio_auth_token, settings.reconcile_s) == ("from-dotenv", 7.0)


def test_logging_follows_the_env_file(tmp_path: Path) -> None:
    """CONFCTL_LOG_JSON in `.env` (not in the environment) makes confctl's log lines JSON."""
    (tmp_path / ".env").write_text("CONFCTL_LOG_JSON=1\n")
    probe = ("from confctl.entry.logging import configure_logging; configure_logging(); "
             "import structlog; structlog.get_logger().warning('probe.line', answer=42)")
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=_child_env(), capture_output=True,
                          text=True, timeout=60, check=True)
    lines = [json.loads(line) for line in (done.stdout + done.stderr).splitlines() if "probe.line" in line]
    assert lines and lines[0]["event"] == "probe.line" and lines[0]["answer"] == 42


@pytest.mark.usefixtures("migrated_engine")
def test_serve_listens_on_port_and_reads_env_file(database_url: str, tmp_path: Path) -> None:
    """`confctl serve` without --port listens on $PORT, taking a libpq database URL and every other setting from
    `.env` in its working folder."""
    port = _free_port()
    libpq = make_url(database_url).set(drivername="postgres").update_query_dict({"sslmode": "prefer"})
    (tmp_path / ".env").write_text(f"CONFCTL_DATABASE_URL={libpq.render_as_string(hide_password=False)}\n"
                                   "CONFCTL_API_KEYS=[]\nCONFCTL_LOG_JSON=true\n")
    process = subprocess.Popen([sys.executable, "-m", "confctl.entry.cli", "serve", "--host", "127.0.0.1"],
                               env=_child_env(PORT=str(port)), cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        assert readiness(port, time.monotonic() + 30) == {"status": "ok", "detail": None}
    finally:
        process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=20)[0]
    assert process.returncode == 0, output
    events = [json.loads(line).get("event") for line in output.splitlines() if line.startswith("{")]
    assert "auth.no_api_keys" in events, output  # CONFCTL_LOG_JSON from .env




@pytest.mark.usefixtures("clean_env")
def test_a_bad_setting_is_one_line_per_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every invalid setting is reported on a line of its own naming its variable (exit code 2, no traceback)."""
    monkeypatch.setenv("CONFCTL_RECORD", "perhaps")
    monkeypatch.setenv("CONFCTL_SSE_MAX_S", "-1")
    assert main(["migrate"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert sorted(line.split(":")[1].strip() for line in lines) == ["CONFCTL_RECORD", "CONFCTL_SSE_MAX_S"], lines
    assert not any("Traceback" in line for line in lines)


# .env.example


def _example() -> dict[str, str]:
    """The variables `.env.example` lists (`# NAME=default` lines) and the default it gives each."""
    found: dict[str, str] = {}
    for line in (REPO / ".env.example").read_text().splitlines():
        matched = re.fullmatch(r"# ?([A-Z][A-Z0-9_]*)=(.*)", line)
        if matched:
            assert matched[1] not in found, f"{matched[1]} twice in .env.example"
            found[matched[1]] = matched[2]
    return found


def _option_defaults() -> dict[str, set[str]]:
    """Each variable behind a command-line option, and the defaults it has (per command), as text."""
    found: dict[str, set[str]] = {}
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for command in commands.choices.values():
        for action in command._actions:
            if isinstance(action.default, FromEnvironment):
                for name in action.default.names:
                    fallback = action.default.fallback
                    found.setdefault(name, set()).add("" if fallback is None else str(fallback))
    return found


@pytest.mark.usefixtures("clean_env")
def test_env_example_lists_every_setting_with_its_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`.env.example` has a `# NAME=value` line for every variable of every setting (Twilio's own names included)
    and of every command-line option, no other; each value is the default (empty for an unset setting)."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    example = _example()
    settings = {env for name in Settings.model_fields for env in env_names(name)}
    options = _option_defaults()
    expected = settings | set(options)
    assert set(example) == expected, (
        f"missing from .env.example: {sorted(expected - set(example))}; unknown: {sorted(set(example) - expected)}")
    defaults = Settings()
    for name in Settings.model_fields:
        default = getattr(defaults, name)
        for env in env_names(name):
            value = example[env]
            if default is None:
                assert value == "", f"{env}: unset by default, so `# {env}=`"
                continue
            monkeypatch.setenv(env, value)
            assert getattr(Settings(), name) == default, f"{env}={value} in .env.example is not the default"
            monkeypatch.delenv(env)
    for env, values in options.items():
        if env not in settings:
            assert example[env] in values, f"{env}={example[env]} in .env.example: the defaults are {values}"


def test_env_example_is_a_valid_env_file(clean_env: Path) -> None:
    """`.env.example` copied to `.env` as it is changes nothing: every line is a comment or blank."""
    text = (REPO / ".env.example").read_text()
    assert all(not line.strip() or line.startswith("#") for line in text.splitlines())
    (clean_env / ".env").write_text(text)
    assert Settings().model_fields_set == set()
