"""Readers of the deployment files as Docker and Compose read them: Dockerfile instructions by stage, the
build context's `.dockerignore`, env files, and Compose's `${VAR}` interpolation.

No Docker engine runs on these machines, so these follow the documented formats closely enough for the checks
in this folder, and no further: each reader refuses what it does not understand rather than guess.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
COMPOSE = REPO / "docker-compose.yml"
SIM_ENV = REPO / "compose.sim.env"


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction: its keyword (upper case), its `--flags` and the rest of its text."""

    keyword: str
    flags: tuple[str, ...]
    text: str

    def exec_form(self) -> list[str] | None:
        """The JSON array of an exec-form CMD, ENTRYPOINT, HEALTHCHECK CMD …, or None (shell form)."""
        text = self.text.removeprefix("CMD ").strip() if self.keyword == "HEALTHCHECK" else self.text
        try:
            value = json.loads(text)
        except ValueError:
            return None
        return value if isinstance(value, list) and all(isinstance(v, str) for v in value) else None


@dataclass
class Stage:
    """The instructions from one FROM to the next: its base image and its name (`AS name`), if any."""

    image: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


def dockerfile_instructions(path: Path = DOCKERFILE) -> list[Instruction]:
    """Instructions with their continuation lines joined; comments and the parser directive dropped."""
    instructions: list[Instruction] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # a comment inside a continued instruction is not part of it
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        whole, pending = pending + line, ""
        keyword, _, rest = whole.partition(" ")
        flags: list[str] = []
        rest = rest.strip()
        while rest.startswith("--"):
            flag, _, rest = rest.partition(" ")
            flags.append(flag)
            rest = rest.strip()
        instructions.append(Instruction(keyword.upper(), tuple(flags), rest))
    if pending:
        raise ValueError(f"{path}: the last instruction ends in a line continuation")
    return instructions


def dockerfile_stages(path: Path = DOCKERFILE) -> list[Stage]:
    """The Dockerfile's stages in order; the last is the image that is run."""
    stages: list[Stage] = []
    for instruction in dockerfile_instructions(path):
        if instruction.keyword == "FROM":
            words = instruction.text.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            if len(words) not in (1, 3):
                raise ValueError(f"unexpected FROM: {instruction.text}")
            stages.append(Stage(words[0], name))
        elif not stages:
            if instruction.keyword != "ARG":
                raise ValueError(f"{instruction.keyword} before the first FROM")
        else:
            stages[-1].instructions.append(instruction)
    return stages


def shell_commands(run: Instruction) -> list[list[str]]:
    """A shell-form RUN split into its `&&`-joined commands, each as words."""
    return [shlex.split(part) for part in run.text.split("&&")]


def _ignore_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go's filepath.Match, plus `**` for any number of folders) as a regex."""
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out + r"\Z")


def dockerignored(relative: str, path: Path = DOCKERIGNORE) -> bool:
    """Whether the build context leaves `relative` out: the last pattern matching it or a parent folder wins."""
    rules: list[tuple[bool, re.Pattern[str]]] = []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keep = line.startswith("!")
        rules.append((keep, _ignore_regex(line.removeprefix("!").strip("/"))))
    parts = relative.strip("/").split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    ignored = False
    for keep, regex in rules:
        if any(regex.match(candidate) for candidate in candidates):
            ignored = not keep
    return ignored


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines as Compose reads them: `#` comments, optional single or double quotes around a value."""
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise ValueError(f"{path}:{number}: not KEY=VALUE")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        values[key] = value
    return values


_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])((?:[^{}]|\{[^{}]*\})*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def variables_in(text: str) -> set[str]:
    """The names `${NAME}`, `${NAME:-default}` (and the names inside the default), `$NAME` refer to."""
    names: set[str] = set()
    for match in _VARIABLE.finditer(text.replace("$$", "")):
        names.add(match.group(1) or match.group(4))
        if match.group(3):
            names |= variables_in(match.group(3))
    return names


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's interpolation of one string: `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?err}`."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(4)
        operator, argument = match.group(2), match.group(3) or ""
        value = env.get(name)
        unset = not value if operator in (":-", ":?") else value is None  # `:` counts an empty value as unset
        if unset and operator in ("-", ":-"):
            return interpolate(argument, env)
        if unset and operator in ("?", ":?"):
            raise ValueError(f"{name}: {argument}")
        return value or ""

    return "$".join(_VARIABLE.sub(one, part) for part in text.split("$$"))


def load_compose(path: Path = COMPOSE) -> dict[str, Any]:
    """The Compose file as YAML (merge keys resolved), before interpolation."""
    document = yaml.safe_load(path.read_text())
    if not isinstance(document, dict):
        raise ValueError(f"{path}: not a mapping")
    return document


def container_environment(service: Mapping[str, Any], env: Mapping[str, str], project: Path) -> dict[str, str]:
    """The variables a service's container gets: its env_files found in `project` (the folder of the Compose
    file), then `environment` (interpolated; a key without a value passes the project's variable on, or
    nothing when it is unset)."""
    result: dict[str, str] = {}
    for entry in service.get("env_file", []):
        file = project / (entry["path"] if isinstance(entry, dict) else entry)
        if file.exists():
            result |= read_env_file(file)
        elif not isinstance(entry, dict) or entry.get("required", True):
            raise FileNotFoundError(file)
    for key, value in (service.get("environment") or {}).items():
        if value is None:
            if key in env:
                result[key] = env[key]
        else:
            result[key] = interpolate(str(value), env)
    return result


def image_environment(stage: Stage) -> dict[str, str]:
    """The variables a stage's ENV instructions set (`ENV KEY=VALUE ...` form)."""
    values: dict[str, str] = {}
    for instruction in stage.all("ENV"):
        for word in shlex.split(instruction.text):
            key, sep, value = word.partition("=")
            if not sep:
                raise ValueError(f"ENV without `=`: {instruction.text}")
            values[key] = value
    return values
