"""Reminders: `remind_at`, the `remind_before` filter, and sorting and paging by remind_at.

`GET /todos?completed=false&remind_before=<now>` is what a client polls for the todos due a
reminder; PATCH remind_at null dismisses one.
"""

from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.todos.support import Headers, Todo, create_todo, expected_order, ids, list_all, pages

T = "2030-01-01T12:00:00Z"
BEFORE = "2030-01-01T11:59:59.999999Z"
AFTER = "2030-01-01T12:00:00.000001Z"


def rejected(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    return problem


async def due_a_reminder(client: httpx.AsyncClient, headers: Headers, moment: str) -> list[str]:
    return ids(await list_all(client, headers, completed="false", remind_before=moment))


@pytest.fixture
async def reminders(client: httpx.AsyncClient, alice: Headers, bob: Headers) -> dict[str, Todo]:
    """Alice's todos around T (and one of Bob's, due a reminder long before, never shown)."""
    todos = {
        "early": await create_todo(client, alice, title="early", remind_at=BEFORE),
        "at": await create_todo(client, alice, title="at", remind_at=T, due_at=T),
        "late": await create_todo(client, alice, title="late", remind_at=AFTER),
        "none": await create_todo(client, alice, title="none", due_at=BEFORE),
        "done": await create_todo(client, alice, title="done", remind_at=BEFORE, completed=True),
    }
    await create_todo(client, bob, title="bob's", remind_at="2000-01-01T00:00:00Z")
    return todos


async def test_remind_before_is_exclusive(
    client: httpx.AsyncClient, alice: Headers, reminders: dict[str, Todo]
) -> None:
    found = ids(await list_all(client, alice, remind_before=T))

    assert sorted(found) == sorted([reminders["early"]["id"], reminders["done"]["id"]])


async def test_remind_before_with_completed_false_is_what_is_due_a_reminder(
    client: httpx.AsyncClient, alice: Headers, reminders: dict[str, Todo]
) -> None:
    assert await due_a_reminder(client, alice, T) == [reminders["early"]["id"]]
    assert sorted(await due_a_reminder(client, alice, AFTER)) == sorted(
        [reminders["early"]["id"], reminders["at"]["id"]]
    )
    assert await due_a_reminder(client, alice, BEFORE) == []


async def test_the_bound_may_have_any_offset(
    client: httpx.AsyncClient, alice: Headers, reminders: dict[str, Todo]
) -> None:
    new_york = "2030-01-01T07:00:00.000001-05:00"  # AFTER, in New York's winter time

    found = await due_a_reminder(client, alice, new_york)

    assert sorted(found) == sorted([reminders["early"]["id"], reminders["at"]["id"]])


@pytest.mark.parametrize("bound", ["2030-01-01T12:00:00", "yesterday", "", "2030-13-01T00:00:00Z"])
async def test_a_bound_that_is_not_an_instant_is_422(
    client: httpx.AsyncClient, alice: Headers, bound: str
) -> None:
    response = await client.get("/todos", params={"remind_before": bound}, headers=alice)

    assert [error["loc"] for error in rejected(response)["errors"]] == [["query", "remind_before"]]


async def test_dismissing_a_reminder_drops_the_todo_from_the_list(
    client: httpx.AsyncClient, alice: Headers, reminders: dict[str, Todo]
) -> None:
    early = reminders["early"]

    response = await client.patch(f"/todos/{early['id']}", json={"remind_at": None}, headers=alice)

    assert response.status_code == 200, response.text
    assert response.json()["remind_at"] is None
    assert response.json()["version"] == early["version"] + 1
    assert await due_a_reminder(client, alice, T) == []


async def test_completing_a_todo_drops_it_from_the_list(
    client: httpx.AsyncClient, alice: Headers, reminders: dict[str, Todo]
) -> None:
    early = reminders["early"]

    response = await client.patch(f"/todos/{early['id']}", json={"completed": True}, headers=alice)

    assert response.status_code == 200, response.text
    assert response.json()["remind_at"] == BEFORE
    assert await due_a_reminder(client, alice, T) == []


async def test_snoozing_moves_the_reminder(
    client: httpx.AsyncClient, alice: Headers, reminders: dict[str, Todo]
) -> None:
    early = reminders["early"]

    response = await client.patch(f"/todos/{early['id']}", json={"remind_at": AFTER}, headers=alice)

    assert response.status_code == 200, response.text
    assert await due_a_reminder(client, alice, T) == []
    assert reminders["early"]["id"] in await due_a_reminder(client, alice, "2030-01-02T00:00:00Z")


# -- remind_at and due_at -----------------------------------------------------------------------


async def test_remind_at_without_due_at_is_allowed(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    todo = await create_todo(client, alice, remind_at=T)

    assert todo["remind_at"] == T
    assert todo["due_at"] is None


async def test_remind_at_equal_to_due_at_is_allowed(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    todo = await create_todo(client, alice, remind_at=T, due_at=T)

    assert (todo["remind_at"], todo["due_at"]) == (T, T)


async def test_remind_at_after_due_at_is_422_on_post(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    response = await client.post(
        "/todos", json={"title": "x", "remind_at": AFTER, "due_at": T}, headers=alice
    )

    assert "remind_at" in rejected(response)["errors"][0]["msg"]
    assert await list_all(client, alice) == []


@pytest.mark.parametrize(
    ("fields", "changes"),
    [
        ({"due_at": T}, {"remind_at": AFTER}),
        ({"due_at": T, "remind_at": T}, {"due_at": BEFORE}),
        ({"remind_at": T}, {"due_at": BEFORE}),
        ({"due_at": BEFORE}, {"due_at": T, "remind_at": AFTER}),
        ({}, {"due_at": BEFORE, "remind_at": T}),
    ],
)
async def test_remind_at_after_due_at_is_422_on_patch(
    client: httpx.AsyncClient, alice: Headers, fields: dict[str, str], changes: dict[str, str]
) -> None:
    todo = await create_todo(client, alice, **fields)

    response = await client.patch(f"/todos/{todo['id']}", json=changes, headers=alice)

    assert "remind_at" in rejected(response)["detail"]
    assert await list_all(client, alice) == [todo]


async def test_moving_both_together_is_allowed(client: httpx.AsyncClient, alice: Headers) -> None:
    todo = await create_todo(client, alice, due_at=T, remind_at=BEFORE)

    response = await client.patch(
        f"/todos/{todo['id']}",
        json={"due_at": "2029-01-01T00:00:00Z", "remind_at": "2028-12-31T00:00:00Z"},
        headers=alice,
    )

    assert response.status_code == 200, response.text


async def test_clearing_due_at_keeps_the_reminder(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    todo = await create_todo(client, alice, due_at=T, remind_at=BEFORE)

    response = await client.patch(f"/todos/{todo['id']}", json={"due_at": None}, headers=alice)

    assert response.status_code == 200, response.text
    assert response.json()["remind_at"] == todo["remind_at"]


# -- sorting and paging by remind_at ------------------------------------------------------------

REMIND_TIMES = [T, None, BEFORE, T, None, AFTER, "2029-06-01T00:00:00Z", None, T]


@pytest.fixture
async def mixed(client: httpx.AsyncClient, alice: Headers, bob: Headers) -> list[Todo]:
    """Alice's todos with equal and missing remind_at (and Bob's, which must never show)."""
    for n, remind_at in enumerate(REMIND_TIMES):
        await create_todo(client, alice, title=f"todo {n}", remind_at=remind_at)
    for remind_at in (T, None):
        await create_todo(client, bob, title="bob's", remind_at=remind_at)
    return await list_all(client, alice, limit=100)


@pytest.mark.parametrize("sort", ["remind_at", "-remind_at"])
async def test_sort_by_remind_at_puts_todos_without_one_last(
    client: httpx.AsyncClient, alice: Headers, mixed: list[Todo], sort: str
) -> None:
    listed = await list_all(client, alice, sort=sort, limit=100)

    assert ids(listed) == expected_order(mixed, sort)
    assert [todo["remind_at"] is None for todo in listed] == [False] * 6 + [True] * 3


@pytest.mark.parametrize("sort", ["remind_at", "-remind_at"])
@pytest.mark.parametrize("limit", [1, 2, 4])
async def test_pages_by_remind_at_show_each_todo_once_in_order(
    client: httpx.AsyncClient, alice: Headers, mixed: list[Todo], sort: str, limit: int
) -> None:
    found = await pages(client, alice, sort=sort, limit=limit)

    assert all(len(page) == limit for page in found[:-1])
    assert 1 <= len(found[-1]) <= limit
    assert [todo["id"] for page in found for todo in page] == expected_order(mixed, sort)


@pytest.mark.parametrize("sort", ["remind_at", "-remind_at"])
async def test_pages_of_the_reminder_list(
    client: httpx.AsyncClient, alice: Headers, mixed: list[Todo], sort: str
) -> None:
    found = await pages(client, alice, sort=sort, limit=2, completed="false", remind_before=AFTER)

    bound = datetime.fromisoformat(AFTER)
    due = [t for t in mixed if t["remind_at"] and datetime.fromisoformat(t["remind_at"]) < bound]
    assert len(due) == 5
    assert [todo["id"] for page in found for todo in page] == expected_order(due, sort)


async def test_a_remind_at_cursor_is_refused_by_another_sort(
    client: httpx.AsyncClient, alice: Headers, mixed: list[Todo]
) -> None:
    first = await client.get("/todos", params={"sort": "remind_at", "limit": 2}, headers=alice)
    cursor = first.json()["next_cursor"]

    for sort in ("-remind_at", "due_at"):
        response = await client.get(
            "/todos", params={"sort": sort, "cursor": cursor}, headers=alice
        )
        assert "cursor" in rejected(response)["detail"]


async def test_paging_survives_a_dismissal_between_pages(
    client: httpx.AsyncClient, alice: Headers, mixed: list[Todo]
) -> None:
    order = expected_order(mixed, "remind_at")
    first = await client.get("/todos", params={"sort": "remind_at", "limit": 3}, headers=alice)
    assert ids(first.json()["items"]) == order[:3]
    # Dismissing a todo already listed sends it to the end, among those without a reminder.
    dismissed = order[0]
    response = await client.patch(f"/todos/{dismissed}", json={"remind_at": None}, headers=alice)
    assert response.status_code == 200

    rest = await list_all(
        client, alice, sort="remind_at", limit=3, cursor=first.json()["next_cursor"]
    )

    assert dismissed in ids(rest)
    assert [i for i in ids(rest) if i != dismissed] == order[3:]
