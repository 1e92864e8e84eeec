"""Helpers shared by every test package: settings, tokens, connections, ports, databases,
started apps and their clients."""

import secrets
import socket
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import jwt
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from backend.db import Database, SavepointDatabase, open_database
from backend.db_url import parse_database_url
from backend.main import create_app
from backend.settings import Settings
from backend.users.service import UserService

TEST_SECRET = "test-secret-" + "x" * 40


def make_settings(database_url: str, data_dir: Path, **overrides: object) -> Settings:
    """Settings for a test app, independent of the environment and of any .env file."""
    values: dict[str, object] = {
        "database_url": database_url,
        "data_dir": data_dir,
        "auth_secret": TEST_SECRET,
        "auto_migrate": False,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


class TokenFactory:
    """Real HS256 tokens for the shared-secret mode test apps run in."""

    def __init__(self, secret: str = TEST_SECRET) -> None:
        self.secret = secret

    def __call__(self, sub: str | None = None, **claims: Any) -> str:
        now = int(time.time())
        payload: dict[str, Any] = {"sub": sub or f"user-{uuid.uuid4().hex[:12]}", "iat": now}
        payload["exp"] = now + 600
        payload.setdefault("email", f"{payload['sub']}@example.com")
        payload.update(claims)
        return jwt.encode({k: v for k, v in payload.items() if v is not None}, self.secret)

    def headers(self, sub: str | None = None, **claims: Any) -> dict[str, str]:
        return bearer(self(sub, **claims))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def connect(
    database_url: str, database: str | None = None, *, connect_timeout: float | None = None
) -> asyncpg.Connection:
    """A plain asyncpg connection to `database_url` (or to another database on its server).
    `connect_timeout` (seconds) bounds the attempt in place of the URL's own connect_timeout
    or asyncpg's default of 60 s."""
    arguments = parse_database_url(database_url).asyncpg_arguments()
    if database is not None:
        arguments["database"] = database
    if connect_timeout is not None:
        arguments["timeout"] = connect_timeout
    return await asyncpg.connect(**arguments)


@asynccontextmanager
async def connected(
    database_url: str, database: str | None = None, *, connect_timeout: float | None = None
) -> AsyncIterator[asyncpg.Connection]:
    """`connect`, closed on the way out."""
    connection = await connect(database_url, database, connect_timeout=connect_timeout)
    try:
        yield connection
    finally:
        await connection.close()


@asynccontextmanager
async def app_database(database_url: str, settings: Settings) -> AsyncIterator[Database]:
    """The database exactly as the app opens it (pool, TLS, timeouts), outside any app."""
    async with open_database(settings, database_url) as database:
        yield database


@asynccontextmanager
async def scratch_database(database_url: str, name: str | None = None) -> AsyncIterator[str]:
    """Create an empty database beside the one in `database_url`; yield its URL; drop it."""
    name = name or "scratch_" + secrets.token_hex(4)
    admin = await connect(database_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = parse_database_url(database_url).url.set(database=name)
        yield url.set(drivername="postgresql").render_as_string(hide_password=False)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def run_inside(app: FastAPI, connection: asyncpg.Connection) -> None:
    """Make every request of a started app run in savepoints on `connection` (the test's
    rolled-back transaction), with a user service that has seen nobody yet."""
    app.state.db = SavepointDatabase(connection)
    app.state.users = UserService(app.state.db)


@asynccontextmanager
async def running(
    settings: Settings, connection: asyncpg.Connection | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """A started app and a client for it. With `connection` (in the test's rolled-back
    transaction) its requests use that instead of the app's own engine."""
    app = create_app(settings)
    async with LifespanManager(app):
        if connection is not None:
            run_inside(app, connection)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


async def me(client: httpx.AsyncClient, credentials: str | Mapping[str, str]) -> httpx.Response:
    """GET /users/me with a bearer token, or with ready-made headers (`TokenFactory.headers`)."""
    headers = bearer(credentials) if isinstance(credentials, str) else dict(credentials)
    return await client.get("/users/me", headers=headers)
