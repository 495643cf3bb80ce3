"""wrk for the benchmark: installing it (Debian's package), running it with bench/wrk/callbacks.lua, parsing it."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

LUA = Path(__file__).resolve().parent / "wrk" / "callbacks.lua"
THREADS = 2
# wrk leaves requests slower than its timeout out of the latency histogram: make it long enough to keep them.
TIMEOUT_S = 30


def ensure_wrk() -> str:
    """The path of wrk, installed with apt-get when missing."""
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk is missing: apt-get install wrk", flush=True)
    subprocess.run("apt-get update -qq && apt-get install -y -qq wrk", shell=True, check=True,
                   stdout=subprocess.DEVNULL, timeout=600)
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk is still missing after apt-get install wrk")
    return found


@dataclass
class WrkResult:
    """What one wrk run reported."""

    requests: int = 0
    duration_s: float = 0.0
    rps: float = 0.0
    p50_ms: float | None = None
    p99_ms: float | None = None
    non_2xx: int = 0
    socket_errors: dict[str, int] = field(default_factory=dict)
    sent: list[int] = field(default_factory=list)  # per thread, from the Lua script
    exhausted: bool = False
    raw: str = ""

    @property
    def errors(self) -> int:
        return self.non_2xx + sum(self.socket_errors.values())


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0, "h": 3600000.0}


def _ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", value.strip())
    if not match:
        raise ValueError(f"not a wrk duration: {value!r}")
    return float(match.group(1)) * _UNITS_MS[match.group(2)]


def parse(text: str) -> WrkResult:
    """Parse wrk's report (with --latency) and the lines our Lua done() prints."""
    result = WrkResult(raw=text)
    if m := re.search(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h)", text, re.M):
        result.requests = int(m.group(1))
        result.duration_s = _ms(m.group(2) + m.group(3)) / 1000
    if m := re.search(r"^Requests/sec:\s*([\d.]+)", text, re.M):
        result.rps = float(m.group(1))
    if m := re.search(r"^\s*50%\s+(\S+)", text, re.M):
        result.p50_ms = _ms(m.group(1))
    if m := re.search(r"^\s*99%\s+(\S+)", text, re.M):
        result.p99_ms = _ms(m.group(1))
    if m := re.search(r"Non-2xx or 3xx responses:\s*(\d+)", text):
        result.non_2xx = int(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text):
        result.socket_errors = dict(zip(("connect", "read", "write", "timeout"), map(int, m.groups()), strict=True))
    for m in re.finditer(r"^bench-thread (\d+) loaded (\d+) sent (\d+) exhausted (\d+)", text, re.M):
        result.sent.append(int(m.group(3)))
        result.exhausted |= m.group(4) == "1"
    return result


def run_wrk(url: str, connections: int, duration_s: float, prefix: Path, mode: str = "once",
            limits: list[int] | None = None) -> WrkResult:
    """One wrk run of `duration_s` seconds at `connections` connections over the set written at `prefix`."""
    argv = [ensure_wrk(), f"-t{THREADS}", f"-c{connections}", f"-d{max(1, round(duration_s))}s", "--latency",
            f"--timeout={TIMEOUT_S}s", "-s", str(LUA), url, "--", str(prefix), mode,
            *[str(n) for n in (limits or [])]]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration_s + TIMEOUT_S + 30)
    if done.returncode != 0 or "Requests/sec" not in done.stdout:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
    return parse(done.stdout)
