"""Fixtures for the change-feed tests.

Most tests use `client` (tests/conftest.py): every request, and every look at the tables
through `connection`, happens in the test's one rolled-back transaction. The ordering tests
need writes that really commit and race each other: `live` is a migrated scratch database
of their own with the app's real pool (backend.db.open_database), and `live_user` makes
users in it.
"""

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from backend import migrations
from backend.db import Database, open_database
from tests.support import make_settings, scratch_database
from tests.todos.conftest import alice, bob  # noqa: F401


@pytest.fixture(scope="package")
async def live(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Database]:
    """A real pool on a freshly migrated database of its own (dropped afterwards)."""
    data_dir: Path = tmp_path_factory.mktemp("sync-live")
    async with scratch_database(database_url) as url:
        settings = make_settings(url, data_dir, db_pool_size=8)
        await migrations.upgrade(url, settings)
        async with open_database(settings, url) as database:
            yield database


@pytest.fixture
def live_user(live: Database) -> Callable[[], Awaitable[str]]:
    """Creates a user row in `live` (todos need one) and returns its id."""

    async def create() -> str:
        user_id = f"sync-{uuid.uuid4().hex[:12]}"
        async with live.connection() as connection:
            await connection.execute(
                "INSERT INTO \"user\" (id, name, email) VALUES ($1, $1, $1 || '@example.com')",
                user_id,
            )
        return user_id

    return create
