"""docker-compose.yml checked without a Docker engine: valid under the Compose Specification, referring only to
files, images, services and volumes that exist, running real `confctl` commands with real options, and setting
only variables confctl reads, wired so that confctl and the simulator agree on URLs and on the account.

tests/deploy/compose-spec.json is the Compose Specification's JSON schema, copied unchanged from
github.com/compose-spec/compose-spec (schema/compose-spec.json, commit 170098ba07d9, Apache-2.0).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest

from confctl.entry.cli import build_parser, parse_args
from confctl.entry.settings import Settings
from tests.deploy.files import (
    COMPOSE,
    REPO,
    SIM_ENV,
    container_environment,
    dockerfile_stages,
    image_environment,
    load_compose,
    read_env_file,
    variables_in,
)

SCHEMA = Path(__file__).with_name("compose-spec.json")
# Variables the Compose file uses for itself, not for confctl.
COMPOSE_ONLY = {"POSTGRES_PASSWORD", "COMPOSE_PROFILES"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


def _confctl_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services that run confctl's image (built from the Dockerfile)."""
    return {name: s for name, s in compose["services"].items() if "build" in s}


def _argv(service: dict[str, Any]) -> list[str]:
    """What the container runs: the image's ENTRYPOINT followed by the service's command."""
    entrypoint = dockerfile_stages()[-1].all("ENTRYPOINT")[-1].exec_form()
    assert entrypoint is not None, "the ENTRYPOINT is in exec form"
    command = service["command"]
    assert isinstance(command, list), "commands are lists: no shell, no word splitting"
    return [*entrypoint, *command]


def _inside(environment: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """This process's environment made the container's: the image's ENV, then the service's; no `.env`."""
    for key in list(os.environ):
        if key.startswith(("CONFCTL_", "TWILIO_")) or key == "PORT":
            monkeypatch.delenv(key)
    for key, value in (image_environment(dockerfile_stages()[-1]) | environment).items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)


def _settings_from(environment: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Settings:
    """Settings as confctl reads them inside the container."""
    _inside(environment, monkeypatch, tmp_path)
    return Settings()


def _arguments(service: dict[str, Any], environment: dict[str, str], monkeypatch: pytest.MonkeyPatch,
               tmp_path: Path) -> Any:
    """The service's command line as confctl parses it inside the container (options not given from the
    environment, as `confctl` itself fills them in)."""
    _inside(environment, monkeypatch, tmp_path)
    return parse_args(_argv(service)[1:])


def _setting_names() -> set[str]:
    """Every environment variable Settings reads: CONFCTL_<FIELD>, and any alias a field accepts."""
    names = set()
    for name, info in Settings.model_fields.items():
        names.add(f"CONFCTL_{name.upper()}")
        alias = info.validation_alias
        choices = getattr(alias, "choices", [alias] if isinstance(alias, str) else [])
        names |= {c.upper() for c in choices if isinstance(c, str)}
    return names


def test_the_compose_file_is_valid_under_the_compose_specification(compose: dict[str, Any]) -> None:
    """docker-compose.yml parses and validates against the Compose Specification's JSON schema."""
    schema = json.loads(SCHEMA.read_text())
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(compose), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_services_refer_only_to_what_exists(compose: dict[str, Any]) -> None:
    """Builds use the top-level Dockerfile, images are official ones, env files exist or are optional, and
    every volume and depends_on names something declared."""
    services = compose["services"]
    for name, service in services.items():
        if "build" in service:
            build = service["build"]
            context = REPO / (build if isinstance(build, str) else build["context"])
            assert context.resolve() == REPO and (context / "Dockerfile").is_file(), name
        else:
            repository = service["image"].split(":")[0]
            assert "/" not in repository, f"{name}: {service['image']} is not an official image"
        for entry in service.get("env_file", []):
            path = entry["path"] if isinstance(entry, dict) else entry
            assert (REPO / path).is_file() or (isinstance(entry, dict) and entry.get("required") is False), path
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert source in (compose.get("volumes") or {}), f"{name}: volume {source} is not declared"
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on an unknown service {dependency}"
    assert {s.get("image") for s in _confctl_services(compose).values()} == {"confctl:local"}, "one image"


def test_postgres_migrate_serve_start_in_order(compose: dict[str, Any]) -> None:
    """PostgreSQL keeps its data in a named volume and is healthy once pg_isready answers; migrate waits for it;
    serve waits for the migrations to complete successfully; the simulator only runs under the `sim` profile."""
    services = compose["services"]
    postgres = services["postgres"]
    assert postgres["image"].startswith("postgres:")
    assert any(v.split(":")[1] == "/var/lib/postgresql/data" for v in postgres["volumes"])
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert _argv(services["migrate"])[1] == "migrate"
    assert services["migrate"]["depends_on"]["postgres"] == {"condition": "service_healthy"}
    assert services["migrate"].get("restart") == "no", "a one-shot"
    assert _argv(services["confctl"])[1] == "serve"
    assert services["confctl"]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert services["confctl"]["ports"] == ["8000:8000"]
    assert _argv(services["simulator"])[1] == "simulator"
    assert services["simulator"]["profiles"] == ["sim"]
    assert all("profiles" not in s for name, s in services.items() if name != "simulator")


def test_every_command_is_a_real_confctl_command_with_real_options(
    compose: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """Each service's command parses with confctl's own CLI, and `confctl <command> --help` lists every option it
    uses."""
    for name, service in _confctl_services(compose).items():
        argv = _argv(service)
        assert argv[0] == "confctl", name
        args = build_parser().parse_args(argv[1:])  # SystemExit (a failure) on an unknown command or option
        assert callable(args.func)
        with pytest.raises(SystemExit) as exit_:
            build_parser().parse_args([argv[1], "--help"])
        assert exit_.value.code == 0
        help_text = capsys.readouterr().out
        for option in (word.split("=")[0] for word in argv[2:] if word.startswith("--")):
            assert option in help_text, f"{name}: `confctl {argv[1]} --help` does not list {option}"


def test_every_variable_is_one_confctl_reads(compose: dict[str, Any]) -> None:
    """The variables the Compose file sets, interpolates or passes on, and those of compose.sim.env, are all
    settings of confctl (or Compose's own)."""
    known = _setting_names()
    used = variables_in(COMPOSE.read_text())
    for service in _confctl_services(compose).values():
        used |= set(service.get("environment") or {})
    used |= set(read_env_file(SIM_ENV))
    unknown = sorted(used - known - COMPOSE_ONLY)
    assert not unknown, f"not settings of confctl: {unknown}"


def test_by_default_confctl_uses_the_compose_postgres_and_twilio(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """With no variables at all, migrate and serve get the compose PostgreSQL's URL (its user, password and
    database) and confctl talks to Twilio itself."""
    postgres = compose["services"]["postgres"]["environment"]
    for name in ("migrate", "confctl"):
        environment = container_environment(compose["services"][name], {}, project=tmp_path)
        url = urlsplit(environment["CONFCTL_DATABASE_URL"])
        assert (url.hostname, url.port, url.username, url.path) == (
            "postgres", 5432, postgres["POSTGRES_USER"], "/" + postgres["POSTGRES_DB"])
        assert url.password == "confctl" and postgres["POSTGRES_PASSWORD"] == "${POSTGRES_PASSWORD:-confctl}"
        settings = _settings_from(environment, monkeypatch, tmp_path)
        assert settings.twilio_api_base == "https://api.twilio.com"


def test_the_sim_env_points_confctl_and_the_simulator_at_each_other(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """With compose.sim.env the `sim` profile is on, confctl's Twilio REST base is the simulator's service and
    port, the simulator calls confctl at its service and port, confctl's public URL is exactly the URL the
    simulator calls and signs for, and both play the same account."""
    env = read_env_file(SIM_ENV)
    assert env["COMPOSE_PROFILES"] == "sim"
    services = compose["services"]
    confctl = _settings_from(container_environment(services["confctl"], env, project=tmp_path), monkeypatch, tmp_path)
    simulator = _settings_from(container_environment(services["simulator"], env, project=tmp_path), monkeypatch,
                               tmp_path)
    sim_args = _arguments(services["simulator"], container_environment(services["simulator"], env, tmp_path),
                          monkeypatch, tmp_path)
    serve_args = _arguments(services["confctl"], container_environment(services["confctl"], env, tmp_path),
                            monkeypatch, tmp_path)

    api_base = urlsplit(confctl.twilio_api_base)
    assert (api_base.hostname, api_base.port) == ("simulator", sim_args.port)
    assert f"{sim_args.port}:{sim_args.port}" in services["simulator"]["ports"]
    webhook_base = urlsplit(sim_args.webhook_base)
    assert (webhook_base.hostname, webhook_base.port) == ("confctl", serve_args.port)
    assert confctl.public_url == sim_args.webhook_base.rstrip("/"), "signatures are checked against the public URL"
    assert (simulator.twilio_account_sid, simulator.twilio_auth_token) == (
        confctl.twilio_account_sid, confctl.twilio_auth_token)
    assert {"twilio_account_sid", "twilio_auth_token"} <= simulator.model_fields_set, "not invented at start"
    assert [k.scopes for k in confctl.api_keys] == [["read", "control", "supervise"]]
