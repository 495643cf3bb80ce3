"""The CLI's options and the environment variables behind them.

A flag given on the command line wins; else the option's variable, from the environment or from `.env` like
every setting; else its default. `--help` shows all three on every option.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dotenv import dotenv_values


@dataclass(frozen=True)
class FromEnvironment:
    """An option's default until the command line has been parsed: the first of `names` that is set, else
    `fallback` (None: none)."""

    names: tuple[str, ...]
    fallback: object
    convert: Callable[[str], Any]
    required: str | None = None  # the flag to name when neither it nor a variable gives a value


def add_command(sub: argparse._SubParsersAction, name: str, text: str,  # type: ignore[type-arg]  # private type
                details: str = "") -> argparse.ArgumentParser:
    """A sub-command whose one-line `text` is its entry in `confctl --help` and starts its own `--help`."""
    description = f"{text[0].upper()}{text[1:]}." + (f" {details}" if details else "")
    parser: argparse.ArgumentParser = sub.add_parser(name, help=text, description=description)
    return parser


def option(parser: argparse.ArgumentParser, *flags: str, env: str | tuple[str, ...], help: str,
           default: object = None, type: Callable[[str], Any] = str, shown: str | None = None,
           required: bool = False) -> None:
    """Add an option read from `flags`, else from the variables `env` (in order), else `default`; `shown` is how
    `--help` spells the default when the value alone would not say it."""
    names = (env,) if isinstance(env, str) else env
    described = shown if shown is not None else ("none, required" if required else
                                                 "none" if default is None else str(default))
    variables = ", then ".join(f"${name}" for name in names)
    pending = FromEnvironment(names, default, type, flags[0] if required else None)
    parser.add_argument(*flags, type=type, default=pending, help=f"{help} (default: {described}; env: {variables})")


def _variables(env_files: Sequence[Path]) -> dict[str, str]:
    """The process environment over the `.env` files (later files win, as in pydantic-settings)."""
    found: dict[str, str] = {}
    for path in env_files:
        if path.is_file():
            found |= {name: value for name, value in dotenv_values(path).items() if value is not None}
    return found | dict(os.environ)


def resolve(parser: argparse.ArgumentParser, args: argparse.Namespace, env_files: Sequence[Path]) -> None:
    """Replace every option not given on the command line by its variable's value or its default."""
    variables: Mapping[str, str] | None = None
    for dest, value in vars(args).items():
        if not isinstance(value, FromEnvironment):
            continue
        variables = _variables(env_files) if variables is None else variables
        result = value.fallback
        for name in value.names:
            text = variables.get(name, "")
            if text.strip():
                try:
                    result = value.convert(text.strip())
                except (TypeError, ValueError):  # the value is not repeated: a variable may hold a secret
                    parser.error(f"${name}: invalid {getattr(value.convert, '__name__', 'text')} value")
                break
        else:
            if value.required:
                parser.error(f"{value.required} is required (or set {' or '.join('$' + n for n in value.names)})")
        setattr(args, dest, result)
