"""Each everyday request of a known user is one round trip to PostgreSQL, counted on the
wire (tests/wire.py) on the production path itself: a committed app, its own pool, autocommit,
statements prepared once per connection. No BEGIN/COMMIT, no user lookup, no COUNT, no re-read
after a write, no ping of a busy connection, no reset query when a connection is released.
A todo's tags are aggregated in the statement that reads or writes it, and `?tag=` filters
inside the page's statement: reads of tagged todos stay one round trip. So does completing a
todo that is not recurring; the first completion of a recurring one (which spawns its
successor) takes a transaction of several statements.

With the statement cache off (behind a pooler without prepared-statement support) each
statement is prepared and executed on the unnamed statement: two round trips."""

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from backend.main import create_app
from tests.support import TokenFactory, make_settings
from tests.todos.support import create_todo
from tests.wire import WireProxy

# What each request is sent after: a completed todo with two tags (so that reads aggregate
# tags), or, for `complete`, an open one. Lists and reads answer with the tags; `tag-filter`
# lists the todos carrying both.
TAGGED = {"title": "milk", "completed": True, "tags": ["b", "A"]}
OPEN = {"title": "milk", "tags": ["b", "A"]}


@dataclass(frozen=True)
class Case:
    method: str
    path: str
    body: object = None
    status: int = 200
    todo: dict[str, object] = field(default_factory=lambda: TAGGED)
    if_match: bool = False  # send the todo's ETag, as clients do for writes


REQUESTS = {
    "list": Case("GET", "/todos"),
    "search": Case("GET", "/todos?q=milk&completed=true"),
    "tag-filter": Case("GET", "/todos?tag=a&tag=b"),
    "get": Case("GET", "/todos/{id}"),
    "create": Case("POST", "/todos", {"title": "another"}, 201),
    "update": Case("PATCH", "/todos/{id}", {"title": "renamed", "completed": True}),
    # Completing a todo that is not recurring: the one statement, guarded by If-Match.
    "complete": Case("PATCH", "/todos/{id}", {"completed": True}, todo=OPEN, if_match=True),
    "stats": Case("GET", "/todos/stats"),
    "me": Case("GET", "/users/me"),
    "delete": Case("DELETE", "/todos/{id}", status=204),
    "clear-completed": Case("DELETE", "/todos?completed=true"),
}
IDS = list(REQUESTS)


def check_tags(name: str, response: httpx.Response, todo: dict[str, Any]) -> None:
    """The reads answer with the todo's tags (the round trip covers them)."""
    if name in ("list", "tag-filter"):
        [first, *_] = response.json()["items"]
        assert first["id"] == todo["id"]
        assert first["tags"] == ["A", "b"]
    elif name in ("get", "complete"):
        assert response.json()["tags"] == ["A", "b"]


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
    for name, case in REQUESTS.items():
        attempts = []
        for _ in range(2):
            todo = await create_todo(wired.client, headers, **case.todo)
            sent = headers | ({"If-Match": f'"{todo["version"]}"'} if case.if_match else {})
            trips, response = await wired.round_trips(
                case.method, case.path.format(id=todo["id"]), case.body, sent
            )
            assert response.status_code == case.status, response.text
            check_tags(name, response, todo)
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


@pytest.fixture(params=[512, 0], ids=["cached", "uncached"])
async def cache_and_wired(
    request: pytest.FixtureRequest, migrated: str, tmp_path: Path
) -> AsyncIterator[tuple[int, Wired]]:
    async for wired in wired_app(migrated, tmp_path, statement_cache_size=request.param):
        yield request.param, wired


async def test_the_first_completion_of_a_recurring_todo_takes_the_locked_path(
    cache_and_wired: tuple[int, Wired], tokens: TokenFactory, committed_user: Callable[[], str]
) -> None:
    """Not an everyday request, and not one round trip: the one-statement completion matches
    nothing (it may not spawn), then BEGIN, the todo locked, the completion written, its
    successor inserted with the tags, COMMIT: four statements (two round trips each without
    the statement cache) and BEGIN and COMMIT."""
    statement_cache_size, wired = cache_and_wired
    headers = tokens.headers(committed_user())
    counts = []
    for _ in range(2):  # the second time, every statement is prepared (cached)
        todo = await create_todo(
            wired.client,
            headers,
            title="water the plants",
            due_at="2030-01-01T09:00:00Z",
            recurrence="FREQ=DAILY",
            tags=["home"],
        )
        sent = headers | {"If-Match": f'"{todo["version"]}"'}
        trips, response = await wired.round_trips(
            "PATCH", f"/todos/{todo['id']}", {"completed": True}, sent
        )
        assert response.status_code == 200, response.text
        assert response.json()["next_id"] is not None
        assert response.json()["tags"] == ["home"]
        counts.append(trips)

    assert counts[1] == (6 if statement_cache_size else 10)
