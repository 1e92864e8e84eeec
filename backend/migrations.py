"""Running Alembic from the application: at start-up in development, `todo-api migrate` in
production, and the schema-at-head check behind /readyz.

Alembic is imported only to migrate: a production process, which never does, answers
/readyz from HEAD_REVISION and saves the memory (about 7 MB per worker).
"""

from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.db import Connection as DatabaseConnection
from backend.db import create_engine
from backend.settings import Settings

ALEMBIC_INI = Path(__file__).resolve().parent.parent / "alembic.ini"
# Every process that migrates this database takes the same advisory lock: "todo-api" as a
# 64-bit number.
MIGRATION_LOCK_KEY = int.from_bytes(b"todo-api", "big")


# The newest migration. tests/test_migrations.py fails until a new migration updates it.
HEAD_REVISION = "0003"

if TYPE_CHECKING:
    from alembic.config import Config


def alembic_config() -> "Config":
    from alembic.config import Config  # here: only a migrating process needs Alembic

    return Config(ALEMBIC_INI)


def head_revisions() -> frozenset[str]:
    return frozenset({HEAD_REVISION})


def lock_for_migration(connection: Connection) -> None:
    """Serialise migrations across processes; released when the transaction ends, so it is
    safe behind a transaction-mode pooler too."""
    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})


def _upgrade(connection: Connection, revision: str) -> None:
    from alembic import command  # here: only a migrating process needs Alembic

    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def upgrade(database_url: str, settings: Settings, revision: str = "head") -> None:
    """Migrate the database at `database_url` (on a connection of its own, closed after)."""
    engine = create_engine(database_url, settings)
    try:
        await upgrade_engine(engine, revision)
    finally:
        await engine.dispose()


async def upgrade_engine(engine: AsyncEngine, revision: str = "head") -> None:
    async with engine.begin() as connection:
        # Take the lock before entering Alembic, not only in env.py: Alembic's `context` is a
        # process-wide proxy, so two upgrades interleaved on one event loop (each awaiting its
        # SQL) would run against each other's migration context (KeyError 'script'). Waiting
        # here, outside Alembic, serialises them in-process as well as across processes.
        await connection.run_sync(lock_for_migration)
        await connection.run_sync(_upgrade, revision)


async def current_revisions(connection: DatabaseConnection) -> frozenset[str]:
    try:
        rows = await connection.fetch("SELECT version_num FROM alembic_version")
    except asyncpg.UndefinedTableError:  # no alembic_version table: nothing applied yet
        return frozenset()
    return frozenset(row[0] for row in rows)


async def schema_is_current(connection: DatabaseConnection) -> bool:
    return await current_revisions(connection) == head_revisions()
