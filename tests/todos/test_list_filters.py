"""GET /todos: filters, and the query parameters it refuses."""

from typing import Any

import httpx
import pytest

from tests.todos.support import Headers, create_todo, ids, list_all


async def test_a_new_user_has_an_empty_list(client: httpx.AsyncClient, alice: Headers) -> None:
    response = await client.get("/todos", headers=alice)

    assert response.status_code == 200
    assert response.json() == {"items": [], "next_cursor": None}


async def test_list_shows_only_the_callers_todos(
    client: httpx.AsyncClient, alice: Headers, bob: Headers
) -> None:
    mine = await create_todo(client, alice, title="mine")
    await create_todo(client, bob, title="bob's")

    assert ids(await list_all(client, alice)) == [mine["id"]]


async def test_filter_by_completed(client: httpx.AsyncClient, alice: Headers) -> None:
    done = await create_todo(client, alice, completed=True)
    open_todo = await create_todo(client, alice)

    assert ids(await list_all(client, alice, completed="true")) == [done["id"]]
    assert ids(await list_all(client, alice, completed="false")) == [open_todo["id"]]


async def test_filter_by_priority(client: httpx.AsyncClient, alice: Headers) -> None:
    by_priority = {
        p: await create_todo(client, alice, priority=p) for p in ("low", "medium", "high")
    }

    for priority, todo in by_priority.items():
        assert ids(await list_all(client, alice, priority=priority)) == [todo["id"]]


async def test_search_is_case_insensitive_in_title_and_description(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    in_title = await create_todo(client, alice, title="Buy MILK")
    in_description = await create_todo(client, alice, title="Shopping", description="oat milk")
    await create_todo(client, alice, title="Walk the dog", description="in the park")

    found = await list_all(client, alice, q="mIlK", sort="title")

    assert ids(found) == [in_title["id"], in_description["id"]]


@pytest.mark.parametrize(
    ("q", "matching", "not_matching"),
    [
        ("50%", "save 50% now", "save 500 now"),
        ("a_c", "a_c", "abc"),
        ("back\\slash", "back\\slash", "backslash"),
        ("%", "100%", "no percent sign"),
    ],
    ids=["percent", "underscore", "backslash", "lone-percent"],
)
async def test_search_wildcards_match_literally(
    client: httpx.AsyncClient, alice: Headers, q: str, matching: str, not_matching: str
) -> None:
    expected = await create_todo(client, alice, title=matching)
    await create_todo(client, alice, title=not_matching)

    assert ids(await list_all(client, alice, q=q)) == [expected["id"]]


async def test_due_after_is_inclusive_and_due_before_exclusive(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    on_9th = await create_todo(client, alice, due_at="2030-01-09T00:00:00Z")
    on_10th = await create_todo(client, alice, due_at="2030-01-10T00:00:00Z")
    on_11th = await create_todo(client, alice, due_at="2030-01-11T00:00:00Z")
    await create_todo(client, alice, title="no due date")
    bound = "2030-01-10T00:00:00Z"

    after = await list_all(client, alice, due_after=bound, sort="due_at")
    before = await list_all(client, alice, due_before=bound, sort="due_at")

    assert ids(after) == [on_10th["id"], on_11th["id"]]
    assert ids(before) == [on_9th["id"]]


async def test_due_bounds_honour_their_offset(client: httpx.AsyncClient, alice: Headers) -> None:
    todo = await create_todo(client, alice, due_at="2030-01-10T00:00:00Z")

    # 01:00+01:00 is the same instant as 00:00Z: inclusive after, exclusive before.
    same_instant = "2030-01-10T01:00:00+01:00"
    assert ids(await list_all(client, alice, due_after=same_instant)) == [todo["id"]]
    assert ids(await list_all(client, alice, due_before=same_instant)) == []


async def test_filters_combine(client: httpx.AsyncClient, alice: Headers) -> None:
    wanted = await create_todo(client, alice, title="pay tax", priority="high", completed=True)
    await create_todo(client, alice, title="pay rent", priority="high")
    await create_todo(client, alice, title="pay tax later", priority="low", completed=True)

    found = await list_all(client, alice, q="pay", priority="high", completed="true")

    assert ids(found) == [wanted["id"]]


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "101"},
        {"limit": "abc"},
        {"due_before": "2030-01-01T00:00:00"},
        {"due_after": "2030-01-01T00:00:00"},
        {"due_before": "9999-12-31T23:59:59-01:00"},
        {"q": "nul\x00"},
        {"q": ""},
        {"sort": "user_id"},
        {"priority": "urgent"},
        {"completed": "maybe"},
    ],
    ids=lambda params: "-".join(f"{k}={v!r}" for k, v in params.items()),
)
async def test_invalid_query_is_422(
    client: httpx.AsyncClient, alice: Headers, params: dict[str, Any]
) -> None:
    response = await client.get("/todos", params=params, headers=alice)

    assert response.status_code == 422
    problem = response.json()
    assert [error["loc"] for error in problem["errors"]] == [["query", *params]]


@pytest.mark.parametrize("limit", [1, 100])
async def test_limits_at_the_bounds_are_accepted(
    client: httpx.AsyncClient, alice: Headers, limit: int
) -> None:
    response = await client.get("/todos", params={"limit": limit}, headers=alice)

    assert response.status_code == 200


async def test_default_page_size_is_20(client: httpx.AsyncClient, alice: Headers) -> None:
    for n in range(21):
        await create_todo(client, alice, title=f"todo {n}")

    response = await client.get("/todos", headers=alice)

    assert len(response.json()["items"]) == 20
    assert response.json()["next_cursor"] is not None
