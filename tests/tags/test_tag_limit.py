"""At most 1,000 tags per user: the next one, however it would be created, is a 409."""

import asyncpg
import httpx
import pytest

from backend.tags.models import MAX_TAGS_PER_USER
from tests.tags.support import assert_problem, create_tag, tag_names
from tests.todos.support import Headers, create_todo


async def fill_tags(connection: asyncpg.Connection, user_id: str, count: int) -> None:
    """`count` tags for `user_id`, named filler-0000..., in one statement on the test's
    connection (the user must exist)."""
    await connection.execute(
        """INSERT INTO tag (id, user_id, name)
           SELECT gen_random_uuid(), $1, format('filler-%s', lpad(n::text, 4, '0'))
           FROM generate_series(1, $2) AS n""",
        user_id,
        count,
    )


async def tag_count(connection: asyncpg.Connection, user_id: str) -> int:
    count: int = await connection.fetchval("SELECT count(*) FROM tag WHERE user_id = $1", user_id)
    return count


def test_the_bound_is_a_thousand() -> None:
    assert MAX_TAGS_PER_USER == 1_000


async def test_the_thousand_and_first_tag_is_409(
    client: httpx.AsyncClient, connection: asyncpg.Connection, alice: Headers, bob: Headers
) -> None:
    await create_tag(client, alice, "Work")  # also provisions Alice
    await fill_tags(connection, "alice", MAX_TAGS_PER_USER - 2)
    await create_tag(client, alice, "The thousandth")
    assert await tag_count(connection, "alice") == MAX_TAGS_PER_USER

    response = await client.post("/tags", json={"name": "One too many"}, headers=alice)

    problem = assert_problem(response, 409)
    assert "1000" in problem["detail"]
    assert await tag_count(connection, "alice") == MAX_TAGS_PER_USER
    # A name already taken is still a name clash, and another user is not affected.
    assert_problem(await client.post("/tags", json={"name": "work"}, headers=alice), 409)
    await create_tag(client, bob, "One too many")


async def test_at_the_bound_a_todo_may_use_existing_tags_but_not_create_one(
    client: httpx.AsyncClient, connection: asyncpg.Connection, alice: Headers
) -> None:
    await create_tag(client, alice, "Work")
    await fill_tags(connection, "alice", MAX_TAGS_PER_USER - 1)
    todo = await create_todo(client, alice, tags=["Work"])

    created = await client.post("/todos", json={"title": "x", "tags": ["New"]}, headers=alice)
    mixed = await client.post("/todos", json={"title": "x", "tags": ["work", "New"]}, headers=alice)
    patched = await client.patch(
        f"/todos/{todo['id']}", json={"tags": ["Work", "New"]}, headers=alice
    )
    reused = await client.post(
        "/todos", json={"title": "y", "tags": ["WORK", "filler-0001"]}, headers=alice
    )

    assert_problem(created, 409)
    assert_problem(mixed, 409)
    assert_problem(patched, 409)
    assert reused.status_code == 201, reused.text
    assert reused.json()["tags"] == ["filler-0001", "Work"]
    assert await tag_count(connection, "alice") == MAX_TAGS_PER_USER
    # The refused requests changed nothing: no todo, no link.
    titles = [t["title"] for t in (await client.get("/todos", headers=alice)).json()["items"]]
    assert sorted(titles) == ["a todo", "y"]
    assert (await client.get(f"/todos/{todo['id']}", headers=alice)).json() == todo


@pytest.mark.parametrize(("room", "wanted", "status"), [(2, 2, 201), (1, 2, 409), (2, 3, 409)])
async def test_a_todo_creating_several_tags_fits_or_creates_none(
    client: httpx.AsyncClient,
    connection: asyncpg.Connection,
    alice: Headers,
    room: int,
    wanted: int,
    status: int,
) -> None:
    await create_tag(client, alice, "Work")
    await fill_tags(connection, "alice", MAX_TAGS_PER_USER - 1 - room)
    names = [f"new {n}" for n in range(wanted)]

    response = await client.post(
        "/todos", json={"title": "x", "tags": ["Work", *names]}, headers=alice
    )

    assert response.status_code == status, response.text
    expected = MAX_TAGS_PER_USER - room + (wanted if status == 201 else 0)
    assert await tag_count(connection, "alice") == expected
    if status == 409:
        assert not [name for name in await tag_names(client, alice) if name.startswith("new")]


async def test_deleting_a_tag_at_the_bound_makes_room(
    client: httpx.AsyncClient, connection: asyncpg.Connection, alice: Headers
) -> None:
    tag = await create_tag(client, alice, "Work")
    await fill_tags(connection, "alice", MAX_TAGS_PER_USER - 1)
    assert_problem(await client.post("/tags", json={"name": "Home"}, headers=alice), 409)

    await client.delete(f"/tags/{tag['id']}", headers=alice)

    await create_tag(client, alice, "Home")
