"""The embedded PostgreSQL's bookkeeping survives processes killed without cleanup."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from confctl.adapters.embedded_pg import _forget_dead_users


def test_dead_users_are_forgotten_so_the_server_can_stop(tmp_path: Path) -> None:
    """A pid left by a killed process is dropped from the users list; live ones stay."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    dead_pid = int(dead.stdout)
    users = tmp_path / ".handle_pids.json"
    users.write_text(json.dumps([dead_pid, os.getpid()]))
    _forget_dead_users(tmp_path)
    assert json.loads(users.read_text()) == [os.getpid()]


def test_missing_or_garbled_users_file_is_left_alone(tmp_path: Path) -> None:
    """No file, or a file that is not ours to understand: nothing happens."""
    _forget_dead_users(tmp_path)
    assert not (tmp_path / ".handle_pids.json").exists()
    (tmp_path / ".handle_pids.json").write_text("{not json")
    _forget_dead_users(tmp_path)
    assert (tmp_path / ".handle_pids.json").read_text() == "{not json"
