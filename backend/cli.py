"""The `todo-api` command: serve, migrate, prune, token."""

import argparse
import asyncio
import sys

import uvicorn

from backend import maintenance, migrations
from backend.auth.development import DevelopmentKey
from backend.db import database_url, open_database
from backend.observability import configure_logging
from backend.settings import Settings, get_settings

SHUTDOWN_GRACE_SECONDS = 10


def serve(settings: Settings, args: argparse.Namespace) -> int:
    # With several workers this process only supervises them and never imports backend.main:
    # its own lines ("Child process died") need the same JSON logging.
    configure_logging(settings)
    uvicorn.run(
        "backend.main:app",
        host=args.host or settings.host,
        port=args.port or settings.port,
        workers=args.workers or settings.workers,
        http="backend.http:BoundedHttpToolsProtocol",
        limit_concurrency=settings.http_limit_concurrency,
        timeout_keep_alive=settings.http_keep_alive_seconds,
        # After the drain (backend.shutdown), in-flight requests get this long to finish.
        timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
        proxy_headers=True,
        server_header=False,
        access_log=False,  # backend.observability logs each request with its route and user
        log_config=None,  # backend.observability configures logging
    )
    return 0


async def _migrate(settings: Settings, revision: str) -> None:
    async with database_url(settings) as url:
        await migrations.upgrade(url, settings, revision)


def migrate(settings: Settings, args: argparse.Namespace) -> int:
    asyncio.run(_migrate(settings, args.revision))
    print(f"database migrated to {args.revision}")
    return 0


async def _prune(settings: Settings) -> int | None:
    async with database_url(settings) as url, open_database(settings, url) as database:
        return await maintenance.prune(database, settings)


def prune(settings: Settings, args: argparse.Namespace) -> int:
    deleted = asyncio.run(_prune(settings))
    if deleted is None:
        print("another process is pruning; nothing done")
    else:
        print(f"deleted {deleted} expired idempotency keys and change-log entries")
    return 0


def token(settings: Settings, args: argparse.Namespace) -> int:
    if not settings.uses_development_auth or settings.is_production:
        print(
            "todo-api token only works in development mode (no AUTH_JWKS_URL or AUTH_SECRET, "
            "ENVIRONMENT=development): real deployments get tokens from Better Auth.",
            file=sys.stderr,
        )
        return 2
    print(DevelopmentKey.load_or_create(settings.data_dir).mint(args.email))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="todo-api", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve_parser = commands.add_parser("serve", help="run the API with uvicorn")
    serve_parser.add_argument("--host", help="default: HOST setting (127.0.0.1)")
    serve_parser.add_argument("--port", type=int, help="default: PORT setting (8000)")
    serve_parser.add_argument("--workers", type=int, help="default: WORKERS setting (1)")
    serve_parser.set_defaults(handler=serve)

    migrate_parser = commands.add_parser("migrate", help="apply database migrations")
    migrate_parser.add_argument("revision", nargs="?", default="head")
    migrate_parser.set_defaults(handler=migrate)

    prune_parser = commands.add_parser(
        "prune",
        help="delete expired Idempotency-Key records and change-log entries past retention "
        "(the API also does it hourly)",
    )
    prune_parser.set_defaults(handler=prune)

    token_parser = commands.add_parser("token", help="print a development token for EMAIL")
    token_parser.add_argument("email")
    token_parser.set_defaults(handler=token)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = args.handler
    return int(handler(get_settings(), args))


if __name__ == "__main__":
    sys.exit(main())
