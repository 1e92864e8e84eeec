"""Fixtures for the /todos tests.

Most tests use `client` (tests/conftest.py): every request runs inside the test's rolled-back
transaction. Tests that need requests to really commit and race each other use
`committed_client`: an app on its own engine, as in production, whose users are deleted
(with their todos and idempotency keys, by cascade) after the test.
"""

import uuid
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from backend.main import create_app
from backend.settings import Settings
from backend.users.models import User
from tests.support import TokenFactory
from tests.todos.support import ConcurrencyProbe, Headers


@pytest.fixture
def alice(tokens: TokenFactory) -> Headers:
    return tokens.headers("alice")


@pytest.fixture
def bob(tokens: TokenFactory) -> Headers:
    return tokens.headers("bob")


@pytest.fixture(scope="session")
async def committed_app(settings: Settings, engine: AsyncEngine) -> AsyncIterator[FastAPI]:
    """Built like `started_app`, but never given the rolled-back sessionmaker: its requests
    commit on its own engine's pooled connections."""
    app = create_app(settings)
    async with LifespanManager(app):
        yield app


@pytest.fixture
def probe(committed_app: FastAPI) -> ConcurrencyProbe:
    return ConcurrencyProbe(committed_app)


@pytest.fixture
async def committed_client(probe: ConcurrencyProbe) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=probe)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


@pytest.fixture
async def committed_user(engine: AsyncEngine) -> AsyncIterator[Callable[[], str]]:
    """Makes fresh user ids; deletes those users, and so all their rows, afterwards."""
    created: list[str] = []

    def new_user() -> str:
        created.append(f"committed-{uuid.uuid4().hex}")
        return created[-1]

    yield new_user
    async with engine.begin() as connection:
        await connection.execute(delete(User).where(col(User.id).in_(created)))
