"""GET /todos: sort orders and keyset pagination.

The data set is crowded with equal sort keys (the same created_at, priority, title in another
case, due_at, and missing due_at), so only the id tie-breaker keeps pages apart.
"""

import base64
import itertools
import json
import uuid
from datetime import datetime

import asyncpg
import httpx
import pytest

from tests.todos.support import (
    ALL_SORTS,
    Headers,
    Todo,
    create_todo,
    expected_order,
    ids,
    list_all,
    pages,
)

TITLES = ["apple", "Apple", "APPLE", "banana", "Banana", "cherry", "apple pie"]
PRIORITIES = ["medium", "medium", "high", "low", "medium"]
DUE_DATES = ["2030-01-01T00:00:00Z", None, "2030-01-01T00:00:00Z", "2029-06-01T12:00:00Z", None]
CREATED = ["2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z", "2024-01-02T00:00:00Z"]


@pytest.fixture
async def crowded(
    client: httpx.AsyncClient, alice: Headers, bob: Headers, connection: asyncpg.Connection
) -> list[Todo]:
    """25 of Alice's todos with many equal keys (and a few of Bob's, which must never show)."""
    columns = zip(
        itertools.cycle(TITLES),
        itertools.cycle(PRIORITIES),
        itertools.cycle(DUE_DATES),
        itertools.cycle(CREATED),
        range(25),
        strict=False,
    )
    for title, priority, due_at, created_at, _ in columns:
        todo = await create_todo(client, alice, title=title, priority=priority, due_at=due_at)
        # created_at is the server's; within one test transaction it is one now() for all.
        await connection.execute(
            "UPDATE todo SET created_at = $1 WHERE id = $2",
            datetime.fromisoformat(created_at),
            uuid.UUID(todo["id"]),
        )
    for title in TITLES[:3]:
        await create_todo(client, bob, title=title)
    return await list_all(client, alice, limit=100)


@pytest.mark.parametrize("sort", ALL_SORTS)
async def test_one_page_follows_the_documented_order(
    client: httpx.AsyncClient, alice: Headers, crowded: list[Todo], sort: str
) -> None:
    response = await client.get("/todos", params={"sort": sort, "limit": 100}, headers=alice)

    assert response.json()["next_cursor"] is None
    assert ids(response.json()["items"]) == expected_order(crowded, sort)


@pytest.mark.parametrize("sort", ALL_SORTS)
async def test_walking_small_pages_returns_every_todo_once_in_order(
    client: httpx.AsyncClient, alice: Headers, crowded: list[Todo], sort: str
) -> None:
    walked = await pages(client, alice, sort=sort, limit=3)

    assert [len(page) for page in walked] == [3] * 8 + [1]
    assert [todo["id"] for page in walked for todo in page] == expected_order(crowded, sort)


async def test_default_order_is_newest_first(
    client: httpx.AsyncClient, alice: Headers, crowded: list[Todo]
) -> None:
    assert ids(await list_all(client, alice)) == expected_order(crowded, "-created_at")


@pytest.mark.parametrize("sort", ["due_at", "-due_at"])
async def test_todos_without_due_at_come_last(
    client: httpx.AsyncClient, alice: Headers, sort: str
) -> None:
    undated = await create_todo(client, alice, title="someday")
    early = await create_todo(client, alice, due_at="2030-01-01T00:00:00Z")
    late = await create_todo(client, alice, due_at="2031-01-01T00:00:00Z")

    dated = [early["id"], late["id"]] if sort == "due_at" else [late["id"], early["id"]]
    assert ids(await list_all(client, alice, sort=sort)) == [*dated, undated["id"]]


async def test_priority_ranks_low_below_medium_below_high(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    high = await create_todo(client, alice, priority="high")
    low = await create_todo(client, alice, priority="low")
    medium = await create_todo(client, alice, priority="medium")

    assert ids(await list_all(client, alice, sort="priority")) == [
        low["id"],
        medium["id"],
        high["id"],
    ]
    assert ids(await list_all(client, alice, sort="-priority")) == [
        high["id"],
        medium["id"],
        low["id"],
    ]


async def test_title_sorts_case_insensitively(client: httpx.AsyncClient, alice: Headers) -> None:
    banana = await create_todo(client, alice, title="banana")
    apple = await create_todo(client, alice, title="Apple")
    cherry = await create_todo(client, alice, title="CHERRY")

    assert ids(await list_all(client, alice, sort="title")) == [
        apple["id"],
        banana["id"],
        cherry["id"],
    ]


@pytest.mark.parametrize("sort", ["title", "-title"])
async def test_non_ascii_titles_page_exactly_like_one_page(
    client: httpx.AsyncClient, alice: Headers, sort: str
) -> None:
    # Python's str.lower() and PostgreSQL's lower() disagree on some of these (final sigma,
    # dotted capital I); the cursor must follow the database.
    titles = [
        "ΟΔΟΣ",
        "οδος",
        "ΟΔΟΣ",
        "İstanbul",
        "istanbul",
        "Straße",
        "STRASSE",
        "Éclair",
        "éclair",
    ]
    for title in titles:
        await create_todo(client, alice, title=title)

    one_page = ids(await list_all(client, alice, sort=sort, limit=100))
    for limit in (1, 2):
        assert ids(await list_all(client, alice, sort=sort, limit=limit)) == one_page


@pytest.mark.parametrize("sort", ALL_SORTS)
async def test_cursor_survives_inserts_and_deletes_between_pages(
    client: httpx.AsyncClient, alice: Headers, crowded: list[Todo], sort: str
) -> None:
    seen: list[str] = []
    deleted: set[str] = set()
    cursor = None
    for round_number in itertools.count():
        params: dict[str, str | int] = {"sort": sort, "limit": 4}
        if cursor:
            params["cursor"] = cursor
        body = (await client.get("/todos", params=params, headers=alice)).json()
        seen += ids(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            break
        # Delete the row the cursor points at and one not yet seen; add rows that sort
        # anywhere (equal keys included).
        unseen = [todo_id for todo_id in expected_order(crowded, sort) if todo_id not in seen]
        for todo_id in (seen[-1], unseen[-1]):
            if todo_id not in deleted:
                await client.delete(f"/todos/{todo_id}", headers=alice)
                deleted.add(todo_id)
        for title in (TITLES[round_number % len(TITLES)], "aardvark", "zebra"):
            await create_todo(
                client,
                alice,
                title=title,
                priority=PRIORITIES[round_number % len(PRIORITIES)],
                due_at=DUE_DATES[round_number % len(DUE_DATES)],
            )

    assert len(seen) == len(set(seen)), "a todo was listed twice"
    survivors = [todo for todo in crowded if todo["id"] not in deleted]
    assert [todo_id for todo_id in seen if todo_id in ids(survivors)] == expected_order(
        survivors, sort
    ), "a todo that existed throughout was skipped or listed out of order"


async def first_cursor(client: httpx.AsyncClient, headers: Headers, sort: str) -> str:
    body = (await client.get("/todos", params={"sort": sort, "limit": 2}, headers=headers)).json()
    cursor: str = body["next_cursor"]
    assert cursor is not None
    return cursor


CURSOR_FIELDS = ("sort", "id", "key")  # the payload is a JSON array of these


def recode(cursor: str, **changes: object) -> str:
    """The cursor with fields of its payload changed, its checksum kept."""
    token = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    checksum, _, payload = token.partition(b".")
    data = dict(zip(CURSOR_FIELDS, json.loads(payload), strict=True)) | changes
    edited = checksum + b"." + json.dumps([data[field] for field in CURSOR_FIELDS]).encode()
    return base64.urlsafe_b64encode(edited).decode().rstrip("=")


async def test_edited_cursor_is_422(
    client: httpx.AsyncClient, alice: Headers, crowded: list[Todo]
) -> None:
    cursor = await first_cursor(client, alice, "title")

    for edited in (recode(cursor, key="zzz"), recode(cursor, sort="-title")):
        response = await client.get(
            "/todos", params={"sort": "title", "cursor": edited}, headers=alice
        )
        assert response.status_code == 422


@pytest.mark.parametrize(
    "cursor", ["garbage", "!!!", "e30", "a" * 513, base64.urlsafe_b64encode(b"x.{}").decode()]
)
async def test_garbage_cursor_is_422(
    client: httpx.AsyncClient, alice: Headers, cursor: str
) -> None:
    response = await client.get("/todos", params={"cursor": cursor}, headers=alice)

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_cursor_from_another_sort_is_422(
    client: httpx.AsyncClient, alice: Headers, crowded: list[Todo]
) -> None:
    cursor = await first_cursor(client, alice, "priority")

    response = await client.get(
        "/todos", params={"sort": "-priority", "cursor": cursor}, headers=alice
    )

    assert response.status_code == 422
