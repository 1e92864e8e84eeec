"""/tags: create, list, get, rename or recolor, delete; what a client may send; names unique
per user ignoring case."""

import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from tests.tags.support import assert_problem, create_tag, list_tags, tag_names
from tests.todos.support import Headers, create_todo

TAG_FIELDS = {"id", "name", "color", "todo_count", "created_at", "updated_at"}


async def test_a_new_user_has_no_tags(client: httpx.AsyncClient, alice: Headers) -> None:
    response = await client.get("/tags", headers=alice)

    assert response.status_code == 200
    assert response.json() == {"items": []}


async def test_create_answers_201_with_location_and_the_tag(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    response = await client.post("/tags", json={"name": "  Work  "}, headers=alice)

    assert response.status_code == 201, response.text
    tag = response.json()
    assert set(tag) == TAG_FIELDS
    assert tag["name"] == "Work"  # trimmed
    assert tag["color"] is None
    assert tag["todo_count"] == 0
    assert uuid.UUID(tag["id"]).version == 7
    assert response.headers["location"] == f"/tags/{tag['id']}"
    fetched = await client.get(response.headers["location"], headers=alice)
    assert fetched.status_code == 200
    assert fetched.json() == tag


async def test_color_is_answered_and_stored_in_lowercase(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    tag = await create_tag(client, alice, "Urgent", color="#FFaA00")

    assert tag["color"] == "#ffaa00"
    assert (await client.get(f"/tags/{tag['id']}", headers=alice)).json()["color"] == "#ffaa00"


@pytest.mark.parametrize(
    "body",
    [
        {"name": ""},
        {"name": "   "},
        {"name": "\t\n"},
        {"name": "x" * 51},
        {"name": "a\x00b"},
        {"name": None},
        {"name": 7},
        {},
        {"name": "ok", "color": "red"},
        {"name": "ok", "color": "#fff"},
        {"name": "ok", "color": "#ffaa00 "},
        {"name": "ok", "color": "#ffaa00\n"},
        {"name": "ok", "color": "ffaa00"},
        {"name": "ok", "color": "#ggaa00"},
        {"name": "ok", "color": "#ffaa001"},
        {"name": "ok", "user_id": "bob"},
        {"name": "ok", "id": str(uuid.uuid4())},
        {"name": "ok", "todo_count": 3},
    ],
)
async def test_invalid_tags_are_422(
    client: httpx.AsyncClient, alice: Headers, body: dict[str, Any]
) -> None:
    response = await client.post("/tags", json=body, headers=alice)

    assert_problem(response, 422)
    assert await list_tags(client, alice) == []


async def test_a_name_of_50_characters_is_accepted(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    name = "é" * 50

    tag = await create_tag(client, alice, f" {name} ")

    assert tag["name"] == name


@pytest.mark.parametrize(
    "changes",
    [
        {"name": ""},
        {"name": "  "},
        {"name": "x" * 51},
        {"name": "a\x00"},
        {"name": None},
        {"color": "#12345"},
        {"color": "blue"},
        {"todo_count": 0},
        {"user_id": "bob"},
    ],
)
async def test_invalid_changes_are_422_and_change_nothing(
    client: httpx.AsyncClient, alice: Headers, changes: dict[str, Any]
) -> None:
    tag = await create_tag(client, alice, "Work", color="#123456")

    response = await client.patch(f"/tags/{tag['id']}", json=changes, headers=alice)

    assert_problem(response, 422)
    assert (await client.get(f"/tags/{tag['id']}", headers=alice)).json() == tag


async def test_list_is_sorted_by_name_ignoring_case(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    for name in ("banana", "Cherry", "apple", "Apricot", "b", "Zed", "ändern"):
        await create_tag(client, alice, name)

    names = await tag_names(client, alice)

    assert names[:6] == ["apple", "Apricot", "b", "banana", "Cherry", "Zed"]
    assert set(names) == {"banana", "Cherry", "apple", "Apricot", "b", "Zed", "ändern"}
    items = await list_tags(client, alice)
    assert all(set(item) == TAG_FIELDS for item in items)


async def test_todo_count_counts_open_and_completed_todos(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    await create_todo(client, alice, title="open", tags=["Work"])
    await create_todo(client, alice, title="done", tags=["work", "Home"], completed=True)
    await create_todo(client, alice, title="untagged")
    lonely = await create_tag(client, alice, "Lonely")

    counts = {tag["name"]: tag["todo_count"] for tag in await list_tags(client, alice)}

    assert counts == {"Home": 1, "Lonely": 0, "Work": 2}
    work = next(tag for tag in await list_tags(client, alice) if tag["name"] == "Work")
    assert (await client.get(f"/tags/{work['id']}", headers=alice)).json()["todo_count"] == 2
    assert (await client.get(f"/tags/{lonely['id']}", headers=alice)).json()["todo_count"] == 0


async def test_patch_renames_and_recolors(client: httpx.AsyncClient, alice: Headers) -> None:
    tag = await create_tag(client, alice, "Work", color="#000000")
    await create_todo(client, alice, tags=["Work"])

    response = await client.patch(
        f"/tags/{tag['id']}", json={"name": " Job ", "color": "#ABCDEF"}, headers=alice
    )

    assert response.status_code == 200, response.text
    renamed = response.json()
    assert renamed["id"] == tag["id"]
    assert renamed["name"] == "Job"
    assert renamed["color"] == "#abcdef"
    assert renamed["todo_count"] == 1
    assert renamed["created_at"] == tag["created_at"]
    assert renamed["updated_at"] >= tag["updated_at"]
    assert (await client.get(f"/tags/{tag['id']}", headers=alice)).json() == renamed


async def test_patch_changes_only_the_fields_sent(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    tag = await create_tag(client, alice, "Work", color="#111111")

    recolored = await client.patch(f"/tags/{tag['id']}", json={"color": "#222222"}, headers=alice)
    renamed = await client.patch(f"/tags/{tag['id']}", json={"name": "Job"}, headers=alice)

    assert recolored.json()["name"] == "Work"
    assert renamed.json()["color"] == "#222222"


async def test_color_null_clears_the_color(client: httpx.AsyncClient, alice: Headers) -> None:
    tag = await create_tag(client, alice, "Work", color="#111111")

    response = await client.patch(f"/tags/{tag['id']}", json={"color": None}, headers=alice)

    assert response.status_code == 200
    assert response.json()["color"] is None
    assert response.json()["name"] == "Work"


async def test_an_empty_patch_answers_the_tag_unchanged(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    tag = await create_tag(client, alice, "Work")

    response = await client.patch(f"/tags/{tag['id']}", json={}, headers=alice)

    assert response.status_code == 200
    assert response.json() == tag


async def test_delete_answers_204_and_the_tag_is_gone(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    tag = await create_tag(client, alice, "Work")
    keep = await create_tag(client, alice, "Home")

    response = await client.delete(f"/tags/{tag['id']}", headers=alice)

    assert response.status_code == 204
    assert response.content == b""
    assert_problem(await client.get(f"/tags/{tag['id']}", headers=alice), 404)
    assert_problem(await client.delete(f"/tags/{tag['id']}", headers=alice), 404)
    assert await list_tags(client, alice) == [keep]


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
async def test_an_unknown_tag_is_404(
    client: httpx.AsyncClient, alice: Headers, method: str
) -> None:
    body = {"name": "x"} if method == "PATCH" else None

    response = await client.request(method, f"/tags/{uuid.uuid4()}", json=body, headers=alice)

    assert_problem(response, 404)


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
async def test_a_malformed_tag_id_is_422(
    client: httpx.AsyncClient, alice: Headers, method: str
) -> None:
    response = await client.request(method, "/tags/not-a-uuid", json={}, headers=alice)

    assert_problem(response, 422)


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/tags"), ("POST", "/tags"), ("GET", f"/tags/{uuid.uuid4()}")],
)
async def test_tags_need_a_token(client: httpx.AsyncClient, method: str, path: str) -> None:
    response = await client.request(method, path, json={"name": "x"})

    assert_problem(response, 401)


# Names are unique per user, ignoring case.


@pytest.mark.parametrize("second", ["work", "WORK", " Work ", "wOrK"])
async def test_a_name_taken_in_any_case_is_409(
    client: httpx.AsyncClient, alice: Headers, second: str
) -> None:
    first = await create_tag(client, alice, "Work")

    response = await client.post("/tags", json={"name": second}, headers=alice)

    assert_problem(response, 409)
    assert await list_tags(client, alice) == [first]


@pytest.mark.parametrize(("first", "second"), [("Éte", "éTE"), ("Straße", "STRASSE")])
async def test_names_compare_as_postgresql_lowers_them(
    client: httpx.AsyncClient,
    connection: asyncpg.Connection,
    alice: Headers,
    first: str,
    second: str,
) -> None:
    same = await connection.fetchval("SELECT lower($1) = lower($2)", first, second)
    await create_tag(client, alice, first)

    response = await client.post("/tags", json={"name": second}, headers=alice)

    assert response.status_code == (409 if same else 201), response.text


async def test_renaming_onto_another_tags_name_in_another_case_is_409(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    await create_tag(client, alice, "Work")
    home = await create_tag(client, alice, "Home")

    response = await client.patch(f"/tags/{home['id']}", json={"name": "WORK"}, headers=alice)

    assert_problem(response, 409)
    assert (await client.get(f"/tags/{home['id']}", headers=alice)).json() == home
    assert await tag_names(client, alice) == ["Home", "Work"]


async def test_renaming_a_tag_to_another_case_of_its_own_name_is_allowed(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    tag = await create_tag(client, alice, "Work")

    response = await client.patch(f"/tags/{tag['id']}", json={"name": "work"}, headers=alice)

    assert response.status_code == 200, response.text
    assert response.json()["name"] == "work"
    assert await tag_names(client, alice) == ["work"]


async def test_renaming_a_tag_to_its_own_name_is_allowed(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    tag = await create_tag(client, alice, "Work")

    response = await client.patch(f"/tags/{tag['id']}", json={"name": "Work"}, headers=alice)

    assert response.status_code == 200, response.text
    assert response.json()["name"] == "Work"


async def test_a_deleted_tags_name_can_be_used_again(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    tag = await create_tag(client, alice, "Work")
    await client.delete(f"/tags/{tag['id']}", headers=alice)

    again = await create_tag(client, alice, "WORK")

    assert again["id"] != tag["id"]
