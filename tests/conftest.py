"""Shared fixtures: one real PostgreSQL per test session, migrated with Alembic; one rolled-back
transaction per test.

With no configuration the server is an embedded PostgreSQL in a temporary directory; set
TEST_DATABASE_URL to run the same suite against any other server (its database is used as is;
scratch databases for migration tests are created beside it).
"""

import os
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from backend import migrations
from backend.auth.dependencies import KnownUsers
from backend.db import Database, create_engine
from backend.embedded import EmbeddedPostgres
from backend.main import create_app
from backend.settings import Settings
from tests.support import TokenFactory, scratch_database

TEST_SECRET = "test-secret-" + "x" * 40


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    # Not under pytest's temp root: pytest makes that 0700 at start-up, and the server runs
    # as its own OS user when the tests run as root.
    root = Path(tempfile.mkdtemp(prefix="todo-api-test-pg-"))
    server = EmbeddedPostgres(root, delete_on_stop=True)
    try:
        yield server.start()
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data")


def make_settings(database_url: str, data_dir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "data_dir": data_dir,
        "auth_secret": TEST_SECRET,
        "auto_migrate": False,
        "db_pool_size": 20,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture(scope="session")
def settings(database_url: str, data_dir: Path) -> Settings:
    return make_settings(database_url, data_dir)


@pytest.fixture(scope="session")
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    assert settings.database_url is not None
    engine = create_engine(settings.database_url.get_secret_value(), settings)
    await migrations.upgrade(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
async def connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection inside a transaction that is rolled back after the test."""
    async with engine.connect() as connection:
        transaction = await connection.begin()
        yield connection
        await transaction.rollback()


@pytest.fixture
def sessionmaker(connection: AsyncConnection) -> async_sessionmaker[AsyncSession]:
    # Every session's commit becomes a savepoint release inside the outer test transaction.
    return async_sessionmaker(
        bind=connection,
        class_=AsyncSession,
        expire_on_commit=False,
        join_transaction_mode="create_savepoint",
    )


@pytest.fixture
async def session(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with sessionmaker() as session:
        yield session


@pytest.fixture(scope="session")
async def started_app(settings: Settings, engine: AsyncEngine) -> AsyncIterator[FastAPI]:
    app = create_app(settings)
    async with LifespanManager(app):
        yield app


@pytest.fixture
async def app(started_app: FastAPI, connection: AsyncConnection) -> AsyncIterator[FastAPI]:
    """The app with every request inside this test's rolled-back transaction."""
    real_database = started_app.state.db
    started_app.state.db = Database.inside(connection)
    started_app.state.known_users = KnownUsers()
    yield started_app
    started_app.state.db = real_database


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


@pytest.fixture
def tokens() -> TokenFactory:
    return TokenFactory(TEST_SECRET)


@pytest.fixture
async def scratch_url(database_url: str) -> AsyncIterator[str]:
    """An empty database of its own on the test server, dropped afterwards."""
    async with scratch_database(database_url, "scratch_" + secrets.token_hex(4)) as url:
        yield url
