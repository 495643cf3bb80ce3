"""The README's "Try a call" works pasted as one block: against a real `confctl dev`, the section's shell block
runs to the end under `bash -euo pipefail` and prints every audibility the README shows in its comments.

The block is taken from README.md as a reader would use it: the `KEY=` line gets the key `confctl dev` printed,
and the URLs the ports this test's `confctl dev` listens on (free ones, not 8000 and 8010). Test aid:
TRY_A_CALL_MD=path/to/file.md reads the section from that Markdown file instead, to try a new text before it
goes into the README.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from tests.deploy.files import REPO

SECTION = "## Try a call"
SHELLS = ("bash", "sh", "shell")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _shell_block(markdown: str) -> str:
    """The shell code blocks of the "Try a call" section, in order, as one script."""
    assert SECTION in markdown, f"no {SECTION!r} section"
    section = markdown.split(SECTION, 1)[1]
    section = re.split(r"^## ", section, maxsplit=1, flags=re.M)[0]
    blocks = [code for language, code in re.findall(r"^```(\w*)\n(.*?)^```", section, flags=re.M | re.S)
              if language in SHELLS]
    assert blocks, f"no shell block in {SECTION!r}"
    return "\n".join(blocks)


def _as_pasted(block: str, key: str, api: str, sim: str) -> str:
    """The block with the key and URLs of this test's `confctl dev`, as a reader edits it."""
    for default in ("http://127.0.0.1:8000", "http://127.0.0.1:8010", "\nKEY="):
        assert default in "\n" + block, f"the block no longer has {default.strip()!r}: update this test"
    block = block.replace("http://127.0.0.1:8000", api).replace("http://127.0.0.1:8010", sim)
    return re.sub(r"^KEY=\S+", f"KEY={key}", block, flags=re.M)


def _expected_audibility(block: str) -> list[str]:
    """The answers the block's comments show, `# {"hears":…}`, exactly as curl prints them."""
    decoder = json.JSONDecoder()
    expected = []
    for comment in re.findall(r"^#\s*(\{\"hears\".*)$", block, flags=re.M):
        value, end = decoder.raw_decode(comment)
        expected.append(comment[:end])
        assert json.loads(comment[:end]) == value
    return expected


def _wait_for_key(output: Path, process: subprocess.Popen[bytes], timeout: float = 90.0) -> str:
    """The API key from `confctl dev`'s banner, printed once both servers are up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        found = re.search(r"^\s*API key\s+(\S+)", output.read_text(errors="replace"), flags=re.M)
        if found:
            return found.group(1)
        time.sleep(0.2)
    raise AssertionError(f"confctl dev did not come up (exit {process.poll()}):\n{output.read_text()}")


def test_try_a_call_runs_pasted_as_one_block(tmp_path: Path) -> None:
    """The section's block, run at once against `confctl dev`, exits 0, prints each audibility its comments
    show in that order, and leaves its conference completed."""
    source = Path(os.environ.get("TRY_A_CALL_MD") or REPO / "README.md")
    block = _shell_block(source.read_text())
    expected = _expected_audibility(block)
    assert len(expected) >= 2, "the block shows who hears whom"

    api_port, sim_port = _free_port(), _free_port()
    api, sim = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{sim_port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONFCTL_", "TWILIO_")) and k != "PORT"}
    # Outside pytest's folder, which a pytest starting meanwhile makes private again: run as root, the embedded
    # server's own user must be able to reach its data.
    data_dir = Path(tempfile.mkdtemp(prefix="confctl-try-a-call-"))
    env["CONFCTL_DATA_DIR"] = str(data_dir)
    log = tmp_path / "dev.log"
    confctl = Path(sys.executable).with_name("confctl")
    with log.open("wb") as out:
        dev = subprocess.Popen([str(confctl), "dev", "--port", str(api_port), "--simulator-port", str(sim_port)],
                               cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        key = _wait_for_key(log, dev)
        script = tmp_path / "try-a-call.sh"
        script.write_text(_as_pasted(block, key, api, sim))
        run = subprocess.run(["bash", "-euo", "pipefail", str(script)], cwd=tmp_path, env=env, capture_output=True,
                             text=True, timeout=120, check=False)
        shown = f"exit {run.returncode}\n--- stdout\n{run.stdout}\n--- stderr\n{run.stderr}"
        assert run.returncode == 0, shown
        at = 0
        for answer in expected:
            found = run.stdout.find(answer, at)
            assert found >= 0, f"{answer} not printed (after the previous ones)\n{shown}"
            at = found + len(answer)
        completed = httpx.get(f"{api}/v1/conferences", params={"status": "completed"},
                              headers={"Authorization": f"Bearer {key}"}, timeout=10).json()["items"]
        assert len(completed) == 1, completed
    finally:
        dev.send_signal(signal.SIGINT)
        try:
            dev.wait(timeout=30)
        except subprocess.TimeoutExpired:
            dev.kill()
            dev.wait()
        shutil.rmtree(data_dir, ignore_errors=True)
