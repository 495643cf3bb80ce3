"""The `confctl` command: serve, migrate, rebuild-projections, dev, simulator, demo.

Every option also reads an environment variable (or `.env`), which its `--help` names with its default
(entry/cli_options.py); everything else confctl is told comes from the `CONFCTL_*` settings (entry/settings.py).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import structlog
from pydantic import ValidationError

from confctl.entry.cli_options import add_command, option, resolve
from confctl.entry.logging import configure_logging
from confctl.entry.settings import Settings, describe

log = structlog.get_logger(__name__)

DESCRIPTION = """Conference-call control for contact centers on Twilio.

Every option can also be given by the environment variable that its --help
names (in the environment or a .env file in the working folder); a flag on the
command line wins over it. `confctl COMMAND --help` shows them."""


def _database_url(settings: Settings) -> tuple[str, object | None]:
    """The configured URL, or an embedded server started for this command (returned to stop it)."""
    if settings.database_url:
        return settings.database_url, None
    from confctl.adapters.embedded_pg import EmbeddedPostgres

    embedded = EmbeddedPostgres(settings.data_dir / "pgdata")
    return embedded.start(), embedded


def cmd_serve(args: argparse.Namespace) -> int:
    """The production server: one process, or `--workers N` processes sharing the port and the database."""
    import uvicorn

    from confctl.entry.app import create_app
    from confctl.entry.twilio_client import twilio_problems

    settings = Settings()
    problems = twilio_problems(settings)  # every call would fail: better not to start at all
    for problem in problems:
        print(f"confctl serve: {problem}", file=sys.stderr)
    if problems:
        return 2
    if args.workers > 1:
        if not settings.database_url:
            print("confctl serve --workers needs CONFCTL_DATABASE_URL (each worker would start its own embedded "
                  "PostgreSQL)", file=sys.stderr)
            return 2
        # Each worker imports the factory and builds its own app: its own pools, outbox worker and identity.
        uvicorn.run("confctl.entry.cli:worker_app", factory=True, workers=args.workers, **uvicorn_options(args))
        return 0
    app = create_app(settings)
    # uvicorn stops gracefully on SIGTERM, then raises the signal again and dies of it (exit 143, an error to a
    # container runtime or process manager); a stop the platform asked for is a normal end, as Ctrl-C is.
    signal.signal(signal.SIGTERM, _stop_asked)
    uvicorn.run(app, **uvicorn_options(args))
    return 0


def uvicorn_options(args: argparse.Namespace) -> dict[str, Any]:
    """What `serve` tells uvicorn: where to listen, and which proxies to believe about the client and the prefix."""
    return {"host": args.host, "port": args.port, "log_config": None, "proxy_headers": True,
            "forwarded_allow_ips": args.forwarded_allow_ips, "root_path": args.root_path}


def _stop_asked(signum: int, frame: object) -> None:
    """SIGTERM, once uvicorn has shut down gracefully (or before it started): exit with status 0."""
    raise SystemExit(0)


def worker_app() -> object:
    """The app of one `serve --workers` process: spawned afresh, so its logging is configured here first."""
    from confctl.entry.app import create_app

    configure_logging()
    return create_app()


def cmd_migrate(_: argparse.Namespace) -> int:
    """Apply the migrations to the configured database."""
    from confctl.adapters.database import migrate_sync

    settings = Settings()
    url, embedded = _database_url(settings)
    try:
        migrate_sync(url)
    finally:
        if embedded is not None:
            embedded.stop()  # type: ignore[attr-defined]
    print("migrations applied")
    return 0


def cmd_rebuild(_: argparse.Namespace) -> int:
    """Rebuild the read model from the event log beside the live one, then swap it in; appends go on meanwhile."""
    import time

    from confctl.adapters.database import create_engine
    from confctl.adapters.pg_store import PostgresEventStore
    from confctl.service.projection import project_all

    settings = Settings()
    url, embedded = _database_url(settings)

    async def run() -> int:
        engine = create_engine(url, pool_size=1)
        store = PostgresEventStore(engine)
        try:
            return await store.rebuild(project_all)
        finally:
            await store.aclose()
            await engine.dispose()

    started = time.perf_counter()
    try:
        count = asyncio.run(run())
    finally:
        if embedded is not None:
            embedded.stop()  # type: ignore[attr-defined]
    print(f"rebuilt the projection of {count} conference(s) from the log in {time.perf_counter() - started:.1f} s")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Drive a scripted call against a running dev stack."""
    from confctl.entry.demo import DemoError, dev_defaults, run_demo

    found = dev_defaults()
    key = args.key or found.get("api_key")
    url = args.url or found.get("url", "http://127.0.0.1:8000")
    simulator_url = args.simulator_url or found.get("simulator_url", "http://127.0.0.1:8010")
    if not key:
        print("no API key: pass --key, set CONFCTL_API_KEY, or start the stack with `confctl dev`", file=sys.stderr)
        return 2
    try:
        asyncio.run(run_demo(url.rstrip("/"), simulator_url.rstrip("/"), key))
    except DemoError as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 1
    return 0


def _version() -> str:
    try:
        return importlib.metadata.version("confctl")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser: one sub-command per process."""
    parser = argparse.ArgumentParser(
        prog="confctl", description=DESCRIPTION,
        epilog="Settings: CONFCTL_* environment variables or .env (see the README's Settings table).",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}",
                        help="print confctl's version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = add_command(sub, "serve", "run the production server (uvicorn)",
                        "Without CONFCTL_DATABASE_URL it starts an embedded PostgreSQL in CONFCTL_DATA_DIR and "
                        "migrates it; with it, run `confctl migrate` first.")
    option(serve, "--host", env="CONFCTL_HOST", default="0.0.0.0", help="interface to listen on")
    option(serve, "--port", env=("CONFCTL_PORT", "PORT"), default=8000, type=int, help="port to listen on")
    option(serve, "--workers", env="CONFCTL_WORKERS", default=1, type=int,
           help="processes sharing the port; more than 1 needs CONFCTL_DATABASE_URL")
    # Behind a reverse proxy (uvicorn's own options and, for the first, its own variable).
    option(serve, "--forwarded-allow-ips", env=("CONFCTL_FORWARDED_ALLOW_IPS", "FORWARDED_ALLOW_IPS"),
           default="127.0.0.1,::1", help="comma-separated addresses or networks of the proxies whose "
           "X-Forwarded-For/-Proto headers are trusted, or * for any")
    option(serve, "--root-path", env="CONFCTL_ROOT_PATH", default="", shown="none",
           help="the path prefix a proxy serves confctl under and strips, e.g. /confctl (CONFCTL_PUBLIC_URL "
           "ends in it too)")
    serve.set_defaults(func=cmd_serve)

    add_command(sub, "migrate", "apply the database migrations",
                "The database is CONFCTL_DATABASE_URL's, else the embedded PostgreSQL in CONFCTL_DATA_DIR. "
                "Migrating a database already at the newest revision changes nothing.").set_defaults(func=cmd_migrate)
    add_command(sub, "rebuild-projections", "rebuild the read model from the event log",
                "On CONFCTL_DATABASE_URL's database (else the embedded one); appends go on meanwhile.").set_defaults(
        func=cmd_rebuild
    )
    from confctl.entry import cli_dev
    cli_dev.add_commands(sub)
    demo = add_command(sub, "demo", "drive a scripted call against a running `confctl dev` stack",
                       "Without flags it uses the URLs and key that `confctl dev` left in CONFCTL_DATA_DIR/dev.json.")
    option(demo, "--url", env="CONFCTL_URL", help="confctl's URL", shown="the running `confctl dev`'s, else "
           "http://127.0.0.1:8000")
    option(demo, "--simulator-url", env="CONFCTL_SIMULATOR_URL", help="the simulator's URL",
           shown="the running `confctl dev`'s, else http://127.0.0.1:8010")
    option(demo, "--key", env="CONFCTL_API_KEY", help="API key with every scope",
           shown="the key `confctl dev` invented")
    demo.set_defaults(func=cmd_demo)
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line, each option not given filled in from its environment variable or its default."""
    parser = build_parser()
    args = parser.parse_args(argv)
    [commands] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    env_file = Settings.model_config.get("env_file")  # the same .env files as the settings
    env_files = [Path(env_file)] if isinstance(env_file, str | Path) else [Path(f) for f in env_file or ()]
    resolve(commands.choices[args.command], args, env_files)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `confctl` console script."""
    configure_logging()
    args = parse_args(argv)
    try:
        result: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    except ValidationError as exc:  # a bad setting: one line per variable, no traceback
        for line in describe(exc):
            print(f"confctl: {line}", file=sys.stderr)
        return 2
    return result


if __name__ == "__main__":
    sys.exit(main())
