"""The `confctl` command: serve, migrate, rebuild-projections, dev, simulator, demo (API.md §1)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

import structlog

from confctl.entry.logging import configure_logging
from confctl.entry.settings import Settings

log = structlog.get_logger(__name__)


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

    settings = Settings()
    if args.workers > 1:
        if not settings.database_url:
            print("confctl serve --workers needs CONFCTL_DATABASE_URL (each worker would start its own embedded "
                  "PostgreSQL)", file=sys.stderr)
            return 2
        # Each worker imports the factory and builds its own app: its own pools, outbox worker and identity.
        uvicorn.run("confctl.entry.app:create_app", factory=True, workers=args.workers, host=args.host,
                    port=args.port, log_config=None, proxy_headers=True)
        return 0
    app = create_app(settings)
    uvicorn.run(app, host=args.host, port=args.port, log_config=None, proxy_headers=True)
    return 0


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
    from confctl.entry.demo import DemoError, default_key, dev_defaults, run_demo

    key = args.key or default_key()
    found = dev_defaults()
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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (one sub-command per process of API.md §1)."""
    parser = argparse.ArgumentParser(prog="confctl", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the production server (uvicorn)")
    serve.add_argument("--host", default="0.0.0.0")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1,
                       help="processes sharing the port (needs CONFCTL_DATABASE_URL); 1 by default")
    serve.set_defaults(func=cmd_serve)

    sub.add_parser("migrate", help="apply the database migrations").set_defaults(func=cmd_migrate)
    sub.add_parser("rebuild-projections", help="rebuild the read model from the event log").set_defaults(
        func=cmd_rebuild
    )
    from confctl.entry import cli_dev
    cli_dev.add_commands(sub)
    demo = sub.add_parser("demo", help="drive a scripted call against a running `confctl dev` stack")
    demo.add_argument("--url", default=None, help="confctl's URL (default: the running `confctl dev`, else :8000)")
    demo.add_argument("--simulator-url", default=None,
                      help="the simulator's URL (default: the dev stack's, else :8010)")
    demo.add_argument("--key", default=None, help="API key (default: $CONFCTL_API_KEY or .confctl/dev.json)")
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `confctl` console script."""
    configure_logging()
    args = build_parser().parse_args(argv)
    try:
        result: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    return result


if __name__ == "__main__":
    sys.exit(main())
