"""The wheel as an operator installs it: built once, installed into a fresh venv outside the checkout, and its
`confctl` run from an empty folder: `--version`, `migrate`, `serve` and `dev`.

The venv gets confctl from the wheel alone (`pip install --no-deps`); its dependencies come from the test
venv's site-packages through a `.pth` file, so nothing is downloaded. A `.pth` line only adds a folder to
`sys.path` (the `.pth` files inside it, such as the editable install's path to `src/`, are not read), so the
checkout cannot leak in: the tests check that `confctl` is imported from the new venv.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine.url import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from confctl.adapters.database import create_engine, head_revision
from confctl.entry.console import ASSETS as CONSOLE_ASSETS
from confctl.entry.wallboard import ASSETS as WALLBOARD_ASSETS
from tests.support.pg_cluster import postgres_processes

REPO = Path(__file__).resolve().parents[2]
# What a wheel is built from (the Dockerfile's build stage copies the same).
SOURCES = ("pyproject.toml", "README.md", "src")


@dataclass(frozen=True)
class Installed:
    """A venv holding the wheel, and an empty working folder beside it (no source tree, no .env)."""

    venv: Path
    home: Path

    @property
    def confctl(self) -> str:
        return str(self.venv / "bin" / "confctl")

    def environment(self, **settings: str) -> dict[str, str]:
        """The test's environment without confctl's settings or a PYTHONPATH, plus `settings`."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("CONFCTL_", "TWILIO_")) and k not in ("PYTHONPATH", "PORT", "VIRTUAL_ENV")}
        return env | settings

    def run(self, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([self.confctl, *args], cwd=self.home, env=self.environment(**settings),
                              capture_output=True, text=True, timeout=120, check=False)

    def start(self, *args: str, **settings: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen([self.confctl, *args], cwd=self.home, env=self.environment(**settings),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _build_wheel(work: Path) -> Path:
    """`pip wheel` on a copy of the sources, so that the build leaves nothing in the checkout."""
    source = work / "source"
    source.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(REPO / name, source / name)
    # No build isolation: the venv's setuptools (a dev dependency) builds it, with no download.
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(work / "dist"), str(source)], check=True, capture_output=True)
    [wheel] = (work / "dist").glob("confctl-*.whl")
    return wheel


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """confctl's wheel in a new venv outside the checkout, its dependencies borrowed from the test venv."""
    work = tmp_path_factory.mktemp("wheel")
    wheel = _build_wheel(work)
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
                    str(wheel)], check=True, capture_output=True)
    site_packages = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                   check=True, capture_output=True, text=True).stdout.strip()
    borrowed = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    (Path(site_packages) / "_test_dependencies.pth").write_text("".join(f"{path}\n" for path in borrowed))
    home = work / "home"
    home.mkdir()
    return Installed(venv, home)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(what: str, check: Callable[[], bool], process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if check():
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.kill()
    output = process.communicate()[0].decode(errors="replace")
    raise AssertionError(f"{what}: not before the deadline (exit {process.returncode})\n{output}")


def _stop(process: subprocess.Popen[bytes], sig: signal.Signals) -> str:
    """Send `sig`, wait for the exit, and return what the process printed."""
    process.send_signal(sig)
    try:
        return process.communicate(timeout=30)[0].decode(errors="replace")
    except subprocess.TimeoutExpired:
        process.kill()
        return process.communicate()[0].decode(errors="replace")


@pytest.fixture
async def empty_database(database_url: str, migrated_engine: AsyncEngine) -> AsyncIterator[str]:
    """The URL of a database of its own on the test server, with no tables at all."""
    name = f"wheel_{uuid.uuid4().hex[:8]}"
    async with migrated_engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield make_url(database_url).set(database=name).render_as_string(hide_password=False)
    async with migrated_engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))


def test_the_installed_command_is_the_wheels(installed: Installed) -> None:
    """The venv imports confctl from its own site-packages, and `confctl --version` names the wheel's version."""
    found = subprocess.run([str(installed.venv / "bin" / "python"), "-c", "import confctl; print(confctl.__file__)"],
                           cwd=installed.home, env=installed.environment(), capture_output=True, text=True,
                           check=True).stdout.strip()
    assert Path(found).is_relative_to(installed.venv), found
    result = installed.run("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"confctl {importlib.metadata.version('confctl')}"


async def test_migrate_then_serve(installed: Installed, empty_database: str) -> None:
    """`confctl migrate` brings an empty database to the head revision; `confctl serve` on it is ready and
    stops cleanly on SIGTERM."""
    result = installed.run("migrate", CONFCTL_DATABASE_URL=empty_database)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "migrations applied" in result.stdout
    engine = create_engine(empty_database, pool_size=1)
    try:
        async with engine.connect() as conn:
            assert await conn.scalar(sa.text("SELECT version_num FROM alembic_version")) == head_revision()
    finally:
        await engine.dispose()

    port = _free_port()
    server = installed.start("serve", "--host", "127.0.0.1", "--port", str(port),
                             CONFCTL_DATABASE_URL=empty_database, CONFCTL_API_KEYS="[]")
    try:
        _wait_for("serve ready", lambda: httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200,
                  server)
        # The wallboard's and the console's static assets are package data too: served from the wheel, not from a
        # checkout.
        console = ["/console", *(f"/console/{name}" for name in sorted(CONSOLE_ASSETS))]
        board = ["/wallboard", *(f"/wallboard/{name}" for name in sorted(WALLBOARD_ASSETS))]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            for asset in (*board, *console):
                assert (await client.get(asset)).status_code == 200, asset
    finally:
        output = _stop(server, signal.SIGTERM)
    assert server.returncode == 0, output


def test_dev(installed: Installed) -> None:
    """`confctl dev` starts its embedded PostgreSQL, migrates it and serves confctl and the simulator; SIGINT stops
    all three and exits 0."""
    api_port, sim_port = _free_port(), _free_port()
    data_dir = installed.home / "dev-data"
    process = installed.start("dev", "--port", str(api_port), "--simulator-port", str(sim_port),
                              CONFCTL_DATA_DIR=str(data_dir))
    try:
        _wait_for("confctl ready",
                  lambda: httpx.get(f"http://127.0.0.1:{api_port}/readyz", timeout=2).status_code == 200, process)
        # The simulator has no /readyz; its control API answering is its readiness.
        _wait_for("simulator ready",
                  lambda: httpx.get(f"http://127.0.0.1:{sim_port}/simulator/faults", timeout=2).status_code == 200,
                  process)
        assert postgres_processes(data_dir)
    finally:
        output = _stop(process, signal.SIGINT)
    assert process.returncode == 0, output
    assert "confctl dev is running" in output
    time.sleep(0.5)
    assert postgres_processes(data_dir) == []
