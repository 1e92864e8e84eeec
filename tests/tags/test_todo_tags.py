"""A todo's `tags`: set by name on POST and PATCH, sorted ignoring case; and how renaming or
deleting a tag changes (and re-versions) every todo carrying it."""

from typing import Any

import httpx
import pytest

from tests.tags.support import (
    assert_problem,
    create_tag,
    etag_of,
    list_tags,
    tag_names,
    tags_of,
)
from tests.todos.support import Headers, Todo, create_todo


async def set_tags(
    client: httpx.AsyncClient, headers: Headers, todo: Todo, tags: Any, **extra: str
) -> httpx.Response:
    return await client.patch(
        f"/todos/{todo['id']}", json={"tags": tags}, headers={**headers, **extra}
    )


async def test_a_todo_without_tags_has_an_empty_list(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    todo = await create_todo(client, alice)

    assert todo["tags"] == []
    assert await tags_of(client, alice, todo["id"]) == []


async def test_create_with_tags_creates_them_and_answers_them_sorted(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    todo = await create_todo(client, alice, tags=["work", "Home", "  errands ", "Zeta", "alpha"])

    assert todo["tags"] == ["alpha", "errands", "Home", "work", "Zeta"]
    assert await tags_of(client, alice, todo["id"]) == todo["tags"]
    assert await tag_names(client, alice) == todo["tags"]
    assert all(tag["todo_count"] == 1 for tag in await list_tags(client, alice))


async def test_duplicates_collapse_to_the_spelling_given_first(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    todo = await create_todo(client, alice, tags=["Work", "work", "WORK", "Home", "Work"])

    assert todo["tags"] == ["Home", "Work"]
    tags = await list_tags(client, alice)
    assert [(tag["name"], tag["todo_count"]) for tag in tags] == [("Home", 1), ("Work", 1)]


async def test_an_existing_tag_is_reused_whatever_the_case_and_keeps_its_spelling(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    existing = await create_tag(client, alice, "Work", color="#abcdef")

    todo = await create_todo(client, alice, tags=["WORK"])
    other = await create_todo(client, alice)
    patched = await set_tags(client, alice, other, ["wOrK"])

    assert todo["tags"] == ["Work"]
    assert patched.json()["tags"] == ["Work"]
    [tag] = await list_tags(client, alice)
    assert tag["id"] == existing["id"]
    assert tag["color"] == "#abcdef"
    assert tag["todo_count"] == 2


async def test_patch_sets_the_whole_tag_set(client: httpx.AsyncClient, alice: Headers) -> None:
    todo = await create_todo(client, alice, tags=["a", "b", "c"])

    response = await set_tags(client, alice, todo, ["C", "d", "b"])

    assert response.status_code == 200, response.text
    assert response.json()["tags"] == ["b", "c", "d"]
    assert await tags_of(client, alice, todo["id"]) == ["b", "c", "d"]
    counts = {tag["name"]: tag["todo_count"] for tag in await list_tags(client, alice)}
    assert counts == {"a": 0, "b": 1, "c": 1, "d": 1}  # unlinking keeps the tag itself


async def test_patch_with_an_empty_list_clears_the_tags(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    todo = await create_todo(client, alice, tags=["a", "b"])

    response = await set_tags(client, alice, todo, [])

    assert response.status_code == 200
    assert response.json()["tags"] == []
    assert await tags_of(client, alice, todo["id"]) == []
    assert await tag_names(client, alice) == ["a", "b"]


async def test_patch_without_tags_leaves_them(client: httpx.AsyncClient, alice: Headers) -> None:
    todo = await create_todo(client, alice, tags=["Work", "home"])

    response = await client.patch(
        f"/todos/{todo['id']}", json={"title": "Renamed", "completed": True}, headers=alice
    )

    assert response.status_code == 200
    assert response.json()["tags"] == ["home", "Work"]
    assert await tags_of(client, alice, todo["id"]) == ["home", "Work"]


async def test_patch_with_tags_and_other_fields_writes_both(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    todo = await create_todo(client, alice, tags=["old"])

    response = await client.patch(
        f"/todos/{todo['id']}", json={"title": "New", "tags": ["new"]}, headers=alice
    )

    assert response.status_code == 200
    assert response.json()["title"] == "New"
    assert response.json()["tags"] == ["new"]
    assert response.json()["version"] == todo["version"] + 1


async def test_create_with_an_empty_list_has_no_tags(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    todo = await create_todo(client, alice, tags=[])

    assert todo["tags"] == []
    assert await list_tags(client, alice) == []


@pytest.mark.parametrize(
    "tags",
    [
        [f"t{n}" for n in range(21)],
        [""],
        ["  "],
        ["x" * 51],
        ["a\x00"],
        [None],
        [3],
        "work",
        None,
        {"name": "work"},
    ],
)
async def test_invalid_tag_lists_are_422_and_create_nothing(
    client: httpx.AsyncClient, alice: Headers, tags: Any
) -> None:
    todo = await create_todo(client, alice, tags=["keep"])

    created = await client.post("/todos", json={"title": "x", "tags": tags}, headers=alice)
    patched = await set_tags(client, alice, todo, tags)

    assert_problem(created, 422)
    assert_problem(patched, 422)
    assert await tag_names(client, alice) == ["keep"]
    assert await tags_of(client, alice, todo["id"]) == ["keep"]


async def test_twenty_tags_are_accepted(client: httpx.AsyncClient, alice: Headers) -> None:
    names = [f"t{n:02}" for n in range(20)]

    todo = await create_todo(client, alice, tags=names)

    assert todo["tags"] == names
    # 21 names that collapse to 20 are still 21 names: the bound is on what is sent.
    patched = await set_tags(client, alice, todo, [*names, "T00"])
    assert_problem(patched, 422)


async def test_a_tagged_create_answers_with_an_etag_and_location(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    response = await client.post("/todos", json={"title": "x", "tags": ["a"]}, headers=alice)

    assert response.status_code == 201
    todo = response.json()
    assert response.headers["etag"] == '"1"'
    assert response.headers["location"] == f"/todos/{todo['id']}"
    assert (await client.get(f"/todos/{todo['id']}", headers=alice)).json() == todo


async def test_setting_tags_bumps_the_version_and_etag(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    todo = await create_todo(client, alice)

    first = await set_tags(client, alice, todo, ["a"])
    second = await set_tags(client, alice, todo, [])

    assert first.json()["version"] == 2
    assert first.headers["etag"] == '"2"'
    assert second.json()["version"] == 3
    assert await etag_of(client, alice, todo["id"]) == '"3"'


async def test_setting_tags_honours_if_match(client: httpx.AsyncClient, alice: Headers) -> None:
    todo = await create_todo(client, alice, tags=["a"])

    stale = await set_tags(client, alice, todo, ["b"], **{"If-Match": '"7"'})
    fresh = await set_tags(client, alice, todo, ["b"], **{"If-Match": '"1"'})

    assert_problem(stale, 412)
    assert fresh.status_code == 200
    assert fresh.json()["tags"] == ["b"]
    assert await tags_of(client, alice, todo["id"]) == ["b"]
    # The failed request created no tag: it was refused before resolving names.
    assert await tag_names(client, alice) == ["a", "b"]


async def test_setting_tags_on_an_unknown_todo_is_404_and_creates_no_tag(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    response = await client.patch(
        "/todos/0190b7a0-0000-7000-8000-000000000000", json={"tags": ["new"]}, headers=alice
    )

    assert_problem(response, 404)
    assert await list_tags(client, alice) == []


# Renaming and deleting a tag change the todos carrying it.


async def test_renaming_a_tag_renames_it_on_every_todo_and_bumps_their_etags(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    carrying = [
        await create_todo(client, alice, title=f"t{n}", tags=["Work", "b"]) for n in range(3)
    ]
    other = await create_todo(client, alice, tags=["b"])
    work = next(tag for tag in await list_tags(client, alice) if tag["name"] == "Work")
    before = {todo["id"]: await etag_of(client, alice, todo["id"]) for todo in [*carrying, other]}

    response = await client.patch(f"/tags/{work['id']}", json={"name": "a job"}, headers=alice)

    assert response.status_code == 200, response.text
    for todo in carrying:
        fetched = await client.get(f"/todos/{todo['id']}", headers=alice)
        assert fetched.json()["tags"] == ["a job", "b"]
        assert fetched.json()["version"] == todo["version"] + 1
        assert fetched.headers["etag"] != before[todo["id"]]
    assert await etag_of(client, alice, other["id"]) == before[other["id"]]
    assert await tags_of(client, alice, other["id"]) == ["b"]


async def test_a_stale_etag_from_before_a_rename_is_412(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    todo = await create_todo(client, alice, tags=["Work"])
    etag = await etag_of(client, alice, todo["id"])
    [work] = await list_tags(client, alice)
    await client.patch(f"/tags/{work['id']}", json={"name": "Job"}, headers=alice)

    response = await client.patch(
        f"/todos/{todo['id']}", json={"title": "lost"}, headers={**alice, "If-Match": etag}
    )
    deleted = await client.delete(f"/todos/{todo['id']}", headers={**alice, "If-Match": etag})

    assert_problem(response, 412)
    assert_problem(deleted, 412)
    fetched = (await client.get(f"/todos/{todo['id']}", headers=alice)).json()
    assert fetched["title"] == todo["title"]
    assert fetched["tags"] == ["Job"]


async def test_changing_only_the_case_of_a_name_is_a_rename(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    todo = await create_todo(client, alice, tags=["Work"])
    [work] = await list_tags(client, alice)

    await client.patch(f"/tags/{work['id']}", json={"name": "WORK"}, headers=alice)

    fetched = await client.get(f"/todos/{todo['id']}", headers=alice)
    assert fetched.json()["tags"] == ["WORK"]
    assert fetched.headers["etag"] == '"2"'


@pytest.mark.parametrize(
    "changes",
    [
        {"color": "#123456"},
        {"color": None},
        {"name": "Work"},
        {"name": "  Work "},
        {"name": "Work", "color": "#654321"},
        {},
    ],
)
async def test_a_change_that_keeps_the_name_does_not_bump_the_todos(
    client: httpx.AsyncClient, alice: Headers, changes: dict[str, Any]
) -> None:
    todo = await create_todo(client, alice, tags=["Work"])
    [work] = await list_tags(client, alice)

    response = await client.patch(f"/tags/{work['id']}", json=changes, headers=alice)

    assert response.status_code == 200, response.text
    fetched = await client.get(f"/todos/{todo['id']}", headers=alice)
    assert fetched.headers["etag"] == '"1"'
    assert fetched.json() == todo


async def test_a_failed_rename_bumps_nothing(client: httpx.AsyncClient, alice: Headers) -> None:
    todo = await create_todo(client, alice, tags=["Work", "Home"])
    home = next(tag for tag in await list_tags(client, alice) if tag["name"] == "Home")

    response = await client.patch(f"/tags/{home['id']}", json={"name": "work"}, headers=alice)

    assert_problem(response, 409)
    fetched = await client.get(f"/todos/{todo['id']}", headers=alice)
    assert fetched.json() == todo


async def test_deleting_a_tag_removes_it_from_its_todos_and_bumps_them(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    carrying = [await create_todo(client, alice, tags=["Work", "home"]) for _ in range(2)]
    done = await create_todo(client, alice, tags=["Work"], completed=True)
    other = await create_todo(client, alice, tags=["home"])
    work = next(tag for tag in await list_tags(client, alice) if tag["name"] == "Work")

    response = await client.delete(f"/tags/{work['id']}", headers=alice)

    assert response.status_code == 204
    for todo, tags in [(carrying[0], ["home"]), (carrying[1], ["home"]), (done, [])]:
        fetched = await client.get(f"/todos/{todo['id']}", headers=alice)
        assert fetched.json()["tags"] == tags
        assert fetched.json()["version"] == todo["version"] + 1
        assert fetched.headers["etag"] == f'"{todo["version"] + 1}"'
    fetched_other = await client.get(f"/todos/{other['id']}", headers=alice)
    assert fetched_other.json() == other
    [home] = await list_tags(client, alice)
    assert home["todo_count"] == 3


async def test_deleting_a_todo_keeps_its_tags(client: httpx.AsyncClient, alice: Headers) -> None:
    todo = await create_todo(client, alice, tags=["Work"])

    assert (await client.delete(f"/todos/{todo['id']}", headers=alice)).status_code == 204

    [work] = await list_tags(client, alice)
    assert work["name"] == "Work"
    assert work["todo_count"] == 0


async def test_clearing_completed_todos_updates_todo_counts(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    await create_todo(client, alice, tags=["Work"], completed=True)
    await create_todo(client, alice, tags=["Work"])

    response = await client.delete("/todos", params={"completed": "true"}, headers=alice)

    assert response.json() == {"deleted": 1}
    [work] = await list_tags(client, alice)
    assert work["todo_count"] == 1


async def test_the_successor_of_a_recurring_todo_carries_its_tags(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    todo = await create_todo(
        client,
        alice,
        title="Water plants",
        due_at="2030-01-01T09:00:00Z",
        recurrence="FREQ=DAILY",
        tags=["Home", "chores"],
    )

    response = await client.patch(
        f"/todos/{todo['id']}", json={"completed": True, "tags": ["Garden", "home"]}, headers=alice
    )

    assert response.status_code == 200, response.text
    completed = response.json()
    assert completed["tags"] == ["Garden", "Home"]
    successor = (await client.get(f"/todos/{completed['next_id']}", headers=alice)).json()
    assert successor["tags"] == ["Garden", "Home"]
    counts = {tag["name"]: tag["todo_count"] for tag in await list_tags(client, alice)}
    assert counts == {"chores": 0, "Garden": 2, "Home": 2}
