"""Helpers shared by tests: tokens, users, scratch databases."""

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
import jwt

from backend.db_url import parse_database_url


class TokenFactory:
    """Real HS256 tokens for the shared-secret mode the default test app runs in."""

    def __init__(self, secret: str) -> None:
        self.secret = secret

    def __call__(self, sub: str | None = None, **claims: Any) -> str:
        now = int(time.time())
        payload: dict[str, Any] = {"sub": sub or f"user-{uuid.uuid4().hex[:12]}", "iat": now}
        payload["exp"] = now + 600
        payload.setdefault("email", f"{payload['sub']}@example.com")
        payload.update(claims)
        return jwt.encode({k: v for k, v in payload.items() if v is not None}, self.secret)

    def headers(self, sub: str | None = None, **claims: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self(sub, **claims)}"}


async def _admin_connection(database_url: str) -> asyncpg.Connection:
    target = parse_database_url(database_url)
    url = target.url
    params: dict[str, Any] = {
        "user": url.username,
        "password": url.password,
        "database": url.database,
        "host": url.query.get("host") or url.host,
        "port": url.port,
    }
    return await asyncpg.connect(**{k: v for k, v in params.items() if v is not None})


@asynccontextmanager
async def scratch_database(database_url: str, name: str) -> AsyncIterator[str]:
    """Create database `name` beside the one in `database_url`; yield its URL; drop it."""
    admin = await _admin_connection(database_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = parse_database_url(database_url).url.set(database=name)
        yield url.set(drivername="postgresql").render_as_string(hide_password=False)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def me(client: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    return await client.get("/users/me", headers=headers)
