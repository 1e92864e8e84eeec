"""Each everyday request of a known user is one round trip to PostgreSQL, counted on the
wire (tests/wire.py) on the production path itself: a committed app, its own pool, autocommit,
statements prepared once per connection. No BEGIN/COMMIT, no user lookup, no COUNT, no re-read
after a write, no ping of a busy connection, no reset query when a connection is released.

With the statement cache off (behind a pooler without prepared-statement support) each
statement is prepared and executed on the unnamed statement: two round trips."""

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from backend.main import create_app
from tests.support import TokenFactory, make_settings
from tests.todos.support import create_todo
from tests.wire import WireProxy

REQUESTS = [
    ("GET", "/todos", None, 200),
    ("GET", "/todos?q=milk&completed=true", None, 200),
    ("GET", "/todos/{id}", None, 200),
    ("POST", "/todos", {"title": "another"}, 201),
    ("PATCH", "/todos/{id}", {"title": "renamed", "completed": True}, 200),
    ("GET", "/todos/stats", None, 200),
    ("GET", "/users/me", None, 200),
    ("DELETE", "/todos/{id}", None, 204),
    ("DELETE", "/todos?completed=true", None, 200),
]
IDS = ["list", "search", "get", "create", "update", "stats", "me", "delete", "clear-completed"]


class Wired:
    """An app whose only database connection goes through the counting proxy."""

    def __init__(self, client: httpx.AsyncClient, counter: WireProxy) -> None:
        self.client = client
        self.counter = counter

    async def round_trips(
        self, method: str, path: str, body: object, headers: dict[str, str]
    ) -> tuple[int, httpx.Response]:
        self.counter.reset()
        response = await self.client.request(method, path, json=body, headers=headers)
        return self.counter.round_trips, response


async def wired_app(
    migrated: str, tmp_path: Path, statement_cache_size: int
) -> AsyncIterator[Wired]:
    counter = WireProxy(migrated)
    url = await counter.start()
    settings = make_settings(
        url,
        tmp_path,
        db_pool_size=1,
        db_statement_cache_size=statement_cache_size,
        db_ping_after_idle=3600,
    )
    app = create_app(settings)
    try:
        async with LifespanManager(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                yield Wired(client, counter)
    finally:
        await counter.stop()


@pytest.fixture
async def cached(migrated: str, tmp_path: Path) -> AsyncIterator[Wired]:
    async for wired in wired_app(migrated, tmp_path, statement_cache_size=512):
        yield wired


@pytest.fixture
async def uncached(migrated: str, tmp_path: Path) -> AsyncIterator[Wired]:
    async for wired in wired_app(migrated, tmp_path, statement_cache_size=0):
        yield wired


async def run_every_request_twice(
    wired: Wired, headers: dict[str, str]
) -> dict[str, tuple[int, int]]:
    """Round trips of each request: the first time (statements prepared), the second."""
    counts: dict[str, tuple[int, int]] = {}
    for name, (method, path, body, status) in zip(IDS, REQUESTS, strict=True):
        attempts = []
        for _ in range(2):
            todo = await create_todo(wired.client, headers, title="milk", completed=True)
            trips, response = await wired.round_trips(
                method, path.format(id=todo["id"]), body, headers
            )
            assert response.status_code == status, response.text
            attempts.append(trips)
        counts[name] = (attempts[0], attempts[1])
    return counts


async def test_a_known_users_request_is_one_round_trip(
    cached: Wired, tokens: TokenFactory, committed_user: Callable[[], str]
) -> None:
    headers = tokens.headers(committed_user())
    await create_todo(cached.client, headers)  # provisions the user

    counts = await run_every_request_twice(cached, headers)

    assert {name: second for name, (_, second) in counts.items()} == dict.fromkeys(IDS, 1)


async def test_without_the_statement_cache_a_statement_is_prepared_each_time(
    uncached: Wired, tokens: TokenFactory, committed_user: Callable[[], str]
) -> None:
    headers = tokens.headers(committed_user())
    await create_todo(uncached.client, headers)

    counts = await run_every_request_twice(uncached, headers)

    assert {name: second for name, (_, second) in counts.items()} == dict.fromkeys(IDS, 2)


async def test_a_new_users_first_request_adds_one_upsert(
    cached: Wired, tokens: TokenFactory, committed_user: Callable[[], str]
) -> None:
    await create_todo(cached.client, tokens.headers(committed_user()))  # statements prepared
    newcomer = tokens.headers(committed_user())

    trips, response = await cached.round_trips("POST", "/todos", {"title": "hi"}, newcomer)

    assert response.status_code == 201
    assert trips == 2  # the upsert that provisions the user, then the insert
