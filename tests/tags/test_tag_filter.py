"""GET /todos?tag=...: todos carrying all the named tags (ignoring case), combined with every
other filter, every sort order and cursor pagination."""

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from backend.todos.pagination import SORT_KEYS
from tests.tags.support import assert_problem
from tests.todos.support import Headers, Todo, create_todo, expected_order, ids, list_all, pages

TAG_SETS = [
    ["Work", "Home"],
    ["work"],
    ["home", "Urgent"],
    ["Work", "home", "urgent"],
    [],
    ["Work", "Errands"],
    ["HOME"],
    ["work", "HOME"],
]


@pytest.fixture
async def tagged(client: httpx.AsyncClient, alice: Headers, bob: Headers) -> list[Todo]:
    """Alice's todos with the tag sets above, and varied fields to sort and filter on (Bob
    has a todo with the same tags, which must never show up)."""
    todos = []
    for n, tags in enumerate(TAG_SETS):
        fields: dict[str, Any] = {
            "title": f"{'Alpha' if n % 2 else 'beta'} {n}",
            "priority": ("low", "medium", "high")[n % 3],
            "completed": n % 4 == 1,
            "tags": tags,
        }
        if n % 3 != 2:
            fields["due_at"] = f"2030-01-{10 - n % 5:02}T12:00:00Z"
            if n % 2 == 0:
                fields["remind_at"] = f"2030-01-0{1 + n % 3}T08:00:00Z"
        todos.append(await create_todo(client, alice, **fields))
    await create_todo(client, bob, title="bob", tags=["Work", "Home", "Urgent"])
    return todos


def carrying(todos: list[Todo], *names: str) -> list[Todo]:
    wanted = {name.lower() for name in names}
    return [todo for todo in todos if wanted <= {tag.lower() for tag in todo["tags"]}]


MATCHING = [
    ["work"],
    ["WORK"],
    ["Home"],
    ["work", "home"],
    ["HOME", "Work"],
    ["work", "home", "urgent"],
    ["urgent"],
    ["errands", "Work"],
    ["work", "work"],
    ["Work", "WORK", "home"],
    [" work "],
]


async def test_a_todo_matches_when_it_carries_every_named_tag(
    client: httpx.AsyncClient, alice: Headers, tagged: list[Todo]
) -> None:
    for names in MATCHING:
        found = await list_all(client, alice, tag=names)

        expected = carrying(tagged, *(name.strip() for name in names))
        assert expected, f"the fixture has no match for {names}"
        assert ids(found) == expected_order(expected, "-created_at"), names


async def test_an_unknown_name_matches_nothing(
    client: httpx.AsyncClient, alice: Headers, tagged: list[Todo]
) -> None:
    for names in (["nope"], ["work", "nope"], ["wor"], ["work%"], ["w_rk"], ["%"]):
        assert await list_all(client, alice, tag=names) == [], names


async def test_a_tag_without_todos_matches_nothing(
    client: httpx.AsyncClient, alice: Headers, tagged: list[Todo]
) -> None:
    await client.post("/tags", json={"name": "Unused"}, headers=alice)

    assert await list_all(client, alice, tag="unused") == []
    assert await list_all(client, alice, tag=["unused", "work"]) == []


async def test_no_tag_parameter_lists_every_todo(
    client: httpx.AsyncClient, alice: Headers, tagged: list[Todo]
) -> None:
    assert sorted(ids(await list_all(client, alice))) == sorted(ids(tagged))


FILTERS: list[tuple[dict[str, str], Callable[[Todo], bool]]] = [
    ({"completed": "true"}, lambda t: t["completed"]),
    ({"completed": "false"}, lambda t: not t["completed"]),
    ({"priority": "high"}, lambda t: t["priority"] == "high"),
    ({"priority": "low"}, lambda t: t["priority"] == "low"),
    ({"q": "alpha"}, lambda t: "alpha" in t["title"].lower()),
    (
        {"due_after": "2030-01-08T00:00:00Z"},
        lambda t: t["due_at"] is not None and t["due_at"] >= "2030-01-08",
    ),
    (
        {"due_before": "2030-01-08T00:00:00Z"},
        lambda t: t["due_at"] is not None and t["due_at"] < "2030-01-08",
    ),
    (
        {"remind_before": "2030-01-03T00:00:00Z"},
        lambda t: t["remind_at"] is not None and t["remind_at"] < "2030-01-03",
    ),
    (
        {"completed": "false", "priority": "low", "q": "a"},
        lambda t: not t["completed"] and t["priority"] == "low" and "a" in t["title"].lower(),
    ),
]
FILTERED_NAMES = [["work"], ["home"], ["Work", "Home"]]


async def test_the_tag_filter_combines_with_every_other_filter(
    client: httpx.AsyncClient, alice: Headers, tagged: list[Todo]
) -> None:
    matched = 0
    for params, keep in FILTERS:
        for names in FILTERED_NAMES:
            found = await list_all(client, alice, tag=names, **params)

            expected = [todo for todo in carrying(tagged, *names) if keep(todo)]
            assert sorted(ids(found)) == sorted(ids(expected)), (params, names)
            matched += bool(expected)
    assert matched >= len(FILTERS), "too few combinations match anything to prove much"


@pytest.mark.parametrize("sort", SORT_KEYS)
async def test_every_sort_pages_through_exactly_the_matching_todos(
    client: httpx.AsyncClient, alice: Headers, tagged: list[Todo], sort: str
) -> None:
    for names in (["work"], ["HOME"], ["work", "home"]):
        found = await pages(client, alice, tag=names, sort=sort, limit=2)

        flat = [todo for page in found for todo in page]
        expected = carrying(tagged, *names)
        assert len(found) > 1, "too few matches to page through"
        assert all(len(page) <= 2 for page in found)
        assert len(ids(flat)) == len(set(ids(flat))), f"a todo appeared on two pages: {names}"
        assert ids(flat) == expected_order(expected, sort), names


async def test_a_cursor_keeps_the_tag_filter_across_pages(
    client: httpx.AsyncClient, alice: Headers, tagged: list[Todo]
) -> None:
    first = (await client.get("/todos", params={"tag": "work", "limit": 1}, headers=alice)).json()
    cursor = first["next_cursor"]
    assert cursor is not None

    rest = await list_all(client, alice, tag="work", cursor=cursor, limit=1)

    assert sorted(ids(first["items"] + rest)) == sorted(ids(carrying(tagged, "work")))


async def test_renaming_a_tag_changes_what_the_filter_matches(
    client: httpx.AsyncClient, alice: Headers, tagged: list[Todo]
) -> None:
    tags = (await client.get("/tags", headers=alice)).json()["items"]
    urgent = next(tag for tag in tags if tag["name"] == "Urgent")

    await client.patch(f"/tags/{urgent['id']}", json={"name": "Soon"}, headers=alice)

    assert await list_all(client, alice, tag="urgent") == []
    assert sorted(ids(await list_all(client, alice, tag="soon"))) == sorted(
        ids(carrying(tagged, "urgent"))
    )


async def test_twenty_tag_parameters_are_accepted_but_not_twenty_one(
    client: httpx.AsyncClient, alice: Headers, tagged: list[Todo]
) -> None:
    twenty = ["work"] * 20

    accepted = await client.get("/todos", params={"tag": twenty}, headers=alice)
    refused = await client.get("/todos", params={"tag": [*twenty, "home"]}, headers=alice)

    assert accepted.status_code == 200
    assert sorted(ids(accepted.json()["items"])) == sorted(ids(carrying(tagged, "work")))
    problem = assert_problem(refused, 422)
    assert problem["errors"][0]["loc"][:2] == ["query", "tag"]


@pytest.mark.parametrize("value", ["", "   ", "x" * 51, "a\x00b"])
async def test_an_invalid_tag_parameter_is_422(
    client: httpx.AsyncClient, alice: Headers, value: str
) -> None:
    response = await client.get("/todos", params={"tag": value}, headers=alice)

    assert_problem(response, 422)
