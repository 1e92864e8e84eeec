"""Databases for the production tests: scratch databases created (and migrated, as the release
step does) on any server and dropped afterwards, and URL helpers to name or switch databases.

Connections of their own go through `tests.support.connected` with `CONNECT_TIMEOUT`, so that
no wait on a stopped or stopping server is unbounded.
"""

import secrets
from collections.abc import Awaitable, Callable
from contextlib import suppress
from pathlib import Path

from sqlalchemy.engine import make_url

from backend import migrations
from tests.production.api import SECRET
from tests.support import connected, make_settings

CONNECT_TIMEOUT = 10.0  # seconds, for the tests' own connections

type ScratchFactory = Callable[..., Awaitable[str]]  # the `scratch` fixture: `create`


async def migrate(url: str, data_dir: Path) -> None:
    """Migrate through a direct URL, as the release step does."""
    await migrations.upgrade(url, make_settings(url, data_dir, auth_secret=SECRET))


def database_name(database_url: str) -> str:
    name = make_url(database_url).database
    assert name, database_url
    return name


def with_database(database_url: str, database: str, **query: str) -> str:
    url = make_url(database_url).set(database=database)
    if query:
        url = url.update_query_dict(query)
    return url.render_as_string(hide_password=False)


class ScratchDatabases:
    """`await create(server_url)`: a new database on that server, migrated unless
    `migrated=False`; its URL. `drop_all()` drops them."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.created: list[tuple[str, str]] = []

    async def _execute(self, server_url: str, statement: str) -> None:
        async with connected(server_url, connect_timeout=CONNECT_TIMEOUT) as admin:
            await admin.execute(statement)

    async def create(self, server_url: str, *, migrated: bool = True) -> str:
        name = "prod_" + secrets.token_hex(4)
        await self._execute(server_url, f'CREATE DATABASE "{name}"')
        self.created.append((server_url, name))
        url = with_database(server_url, name)
        if migrated:
            await migrate(url, self.workdir)
        return url

    async def drop_all(self) -> None:
        for server_url, name in self.created:
            with suppress(Exception):  # a stopped throwaway server is deleted anyway
                await self._execute(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
