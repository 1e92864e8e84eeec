"""Alembic environment: async, URL from the application's settings, naming convention from
the models, and the same advisory lock the application takes before migrating."""

import asyncio
from typing import Any

from alembic import context
from sqlalchemy import Connection

from backend.db import create_engine, database_url
from backend.migrations import lock_for_migration
from backend.models import metadata
from backend.settings import Settings

config = context.config


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    # On a database shared with Better Auth its tables (session, account, ...) are not ours:
    # never propose dropping a table the models do not know.
    return not (type_ == "table" and reflected and compare_to is None)


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        include_object=include_object,
        compare_server_default=True,
    )
    with context.begin_transaction():
        lock_for_migration(connection)
        context.run_migrations()


async def run_standalone() -> None:
    settings = Settings()
    async with database_url(settings) as url:
        engine = create_engine(url, settings)
        try:
            async with engine.connect() as connection:
                await connection.run_sync(run_migrations)
                await connection.commit()
        finally:
            await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")

given = config.attributes.get("connection")
if given is not None:  # called by backend.migrations inside the application
    run_migrations(given)
else:
    asyncio.run(run_standalone())
