"""Shared fixtures: one real PostgreSQL per test session, migrated with Alembic; one rolled-back
transaction per test.

With no configuration the server is an embedded PostgreSQL in a temporary directory; set
TEST_DATABASE_URL to run the same suite against any other server (its database is used as is;
scratch databases for migration tests are created beside it).
"""

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from backend import migrations
from backend.db import create_engine
from backend.embedded import EmbeddedPostgres
from backend.main import create_app
from backend.settings import Settings
from tests.support import TokenFactory, connect, make_settings, run_inside, scratch_database


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
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


@pytest.fixture(scope="session")
def settings(database_url: str, data_dir: Path) -> Settings:
    return make_settings(database_url, data_dir, db_pool_size=20)


@pytest.fixture(scope="session")
async def migrated(database_url: str, settings: Settings) -> str:
    """The test database's URL, once its schema is at the latest migration."""
    await migrations.upgrade(database_url, settings)
    return database_url


@pytest.fixture(scope="session")
async def engine(migrated: str, settings: Settings) -> AsyncIterator[AsyncEngine]:
    """SQLAlchemy, for tests of the models and migrations (requests never use it)."""
    engine = create_engine(migrated, settings)
    yield engine
    await engine.dispose()


@pytest.fixture
async def connection(migrated: str) -> AsyncIterator[asyncpg.Connection]:
    """An asyncpg connection inside a transaction that is rolled back after the test."""
    connection = await connect(migrated)
    transaction = connection.transaction()
    await transaction.start()
    try:
        yield connection
    finally:
        await transaction.rollback()
        await connection.close()


@pytest.fixture
async def session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """An ORM session in a transaction of its own that is rolled back after the test; each
    commit inside becomes a savepoint release."""
    async with engine.connect() as sa_connection:
        transaction = await sa_connection.begin()
        sessions = async_sessionmaker(
            bind=sa_connection,
            class_=AsyncSession,
            expire_on_commit=False,
            join_transaction_mode="create_savepoint",
        )
        async with sessions() as session:
            yield session
        await transaction.rollback()


@pytest.fixture(scope="session")
async def started_app(settings: Settings, migrated: str) -> AsyncIterator[FastAPI]:
    app = create_app(settings)
    async with LifespanManager(app):
        yield app


@pytest.fixture
async def app(started_app: FastAPI, connection: asyncpg.Connection) -> AsyncIterator[FastAPI]:
    """The app with every request inside this test's rolled-back transaction."""
    state = started_app.state
    real_database, real_users = state.db, state.users
    run_inside(started_app, connection)
    yield started_app
    state.db, state.users = real_database, real_users


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


@pytest.fixture
def tokens() -> TokenFactory:
    return TokenFactory()


@pytest.fixture
async def scratch_url(database_url: str) -> AsyncIterator[str]:
    """An empty database of its own on the test server, dropped afterwards."""
    async with scratch_database(database_url) as url:
        yield url
