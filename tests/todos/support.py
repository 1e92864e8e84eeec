"""Helpers for the /todos tests: create todos, walk pages, order todos as the spec says."""

import asyncio
import uuid
from collections.abc import Coroutine
from datetime import datetime
from typing import Any

import httpx
from starlette.types import ASGIApp, Receive, Scope, Send

Todo = dict[str, Any]
Headers = dict[str, str]

PRIORITY_RANK = {"low": 0, "medium": 1, "high": 2}
SORTS = ["created_at", "due_at", "priority", "title"]
ALL_SORTS = [prefix + sort for sort in SORTS for prefix in ("", "-")]


async def create_todo(client: httpx.AsyncClient, headers: Headers, **fields: Any) -> Todo:
    fields.setdefault("title", "a todo")
    response = await client.post("/todos", json=fields, headers=headers)
    assert response.status_code == 201, response.text
    todo: Todo = response.json()
    return todo


async def pages(client: httpx.AsyncClient, headers: Headers, **params: Any) -> list[list[Todo]]:
    """Every page of GET /todos, following next_cursor to the end."""
    found: list[list[Todo]] = []
    cursor: str | None = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await client.get("/todos", params=query, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        found.append(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return found
        assert len(found) < 1000, "pagination does not end"


async def list_all(client: httpx.AsyncClient, headers: Headers, **params: Any) -> list[Todo]:
    return [todo for page in await pages(client, headers, **params) for todo in page]


def ids(todos: list[Todo]) -> list[str]:
    return [todo["id"] for todo in todos]


def expected_order(todos: list[Todo], sort: str) -> list[str]:
    """The ids of `todos` in the order docs/api.md documents for `sort`: priority ranks
    low < medium < high, titles compare case-insensitively, todos without due_at come last in
    both directions, and ties break on id (in the sort's direction)."""
    field = sort.removeprefix("-")
    descending = sort.startswith("-")

    def key(todo: Todo) -> Any:
        value = todo[field]
        if field == "priority":
            return PRIORITY_RANK[value]
        if field == "title":
            return value.lower()
        return datetime.fromisoformat(value)

    with_key = [todo for todo in todos if todo[field] is not None]
    without_key = [todo for todo in todos if todo[field] is None]
    with_key.sort(key=lambda todo: (key(todo), uuid.UUID(todo["id"])), reverse=descending)
    without_key.sort(key=lambda todo: uuid.UUID(todo["id"]), reverse=descending)
    return ids(with_key + without_key)


class BlockingClient:
    """The async test client, driven from a worker thread: Hypothesis state machines are
    synchronous, while the app and the test's transaction live on the test's event loop."""

    def __init__(self, client: httpx.AsyncClient, loop: asyncio.AbstractEventLoop) -> None:
        self._client = client
        self._loop = loop

    def run[T](self, call: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(call, self._loop).result(timeout=30)

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self.run(self._client.request(method, url, **kwargs))


class ConcurrencyProbe:
    """ASGI wrapper that records how many requests were inside the app at once."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.in_flight = 0
        self.max_in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
