"""Where the figures come from: the code benched (a checkout or a git revision) and the machine."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import subprocess
from pathlib import Path

from stack import REPO, Pg


def _sh(command: list[str], cwd: Path | None = None) -> str:
    try:
        return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def export_rev(rev: str, workdir: Path) -> Path:
    """`git archive REV` of this repository into WORKDIR/source (read-only for the repository)."""
    target = workdir / "source"
    target.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", rev], capture_output=True,
                             check=True, timeout=120)
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True, timeout=120)
    return target


def describe_source(args: argparse.Namespace, source: Path) -> str:
    if args.rev:
        return f"git revision {args.rev} ({_sh(['git', '-C', str(REPO), 'rev-parse', '--short', args.rev])})"
    head = _sh(["git", "rev-parse", "--short", "HEAD"], cwd=source)
    if not head:
        return str(source)
    dirty = _sh(["git", "status", "--porcelain", "--", "src", "migrations"], cwd=source)
    return f"{source} at {head}" + (" + uncommitted changes in src/ or migrations/" if dirty else "")


def machine(pg: Pg | None) -> list[str]:
    mem = next((row.split()[1] for row in Path("/proc/meminfo").read_text().splitlines()
                if row.startswith("MemTotal:")), "0")
    lines = [f"- nproc {os.cpu_count()}, memory {int(mem) / 1024 / 1024:.1f} GiB",
             f"- `{_sh(['uname', '-a']) or platform.platform()}`",
             f"- Python {platform.python_version()}"]
    if pg is not None:
        with contextlib.suppress(Exception):
            settings = asyncio.run(_pg_settings(pg))
            lines.append("- PostgreSQL " + ", ".join(f"{k} {v}" for k, v in settings.items()))
    return lines


async def _pg_settings(pg: Pg) -> dict[str, str]:
    conn = await pg.connect("postgres")
    try:
        return {name: str(await conn.fetchval(f"SHOW {name}")) for name in
                ("server_version", "fsync", "synchronous_commit", "shared_buffers", "max_connections")}
    finally:
        await conn.close()

