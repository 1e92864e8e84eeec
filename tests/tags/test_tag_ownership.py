"""Tags belong to one user: the API never shows or changes another user's tags, and the
database itself refuses to link one user's todo to another user's tag."""

from typing import Any

import asyncpg
import httpx
import pytest

from tests.tags.support import assert_problem, create_tag, list_tags, tags_of
from tests.todos.support import Headers, create_todo, ids, list_all


async def test_two_users_may_have_a_tag_of_the_same_name(
    client: httpx.AsyncClient, alice: Headers, bob: Headers
) -> None:
    alices = await create_tag(client, alice, "Work", color="#aaaaaa")
    bobs = await create_tag(client, bob, "work", color="#bbbbbb")

    assert alices["id"] != bobs["id"]
    assert await list_tags(client, alice) == [alices]
    assert await list_tags(client, bob) == [bobs]


async def test_each_user_sees_only_their_own_tags_todos_and_counts(
    client: httpx.AsyncClient, alice: Headers, bob: Headers
) -> None:
    alices_todos = [await create_todo(client, alice, tags=["Work"]) for _ in range(3)]
    bobs_todo = await create_todo(client, bob, tags=["WORK", "Bob only"])
    await create_todo(client, alice, tags=["Alice only"])

    alices_tags = {tag["name"]: tag["todo_count"] for tag in await list_tags(client, alice)}
    bobs_tags = {tag["name"]: tag["todo_count"] for tag in await list_tags(client, bob)}

    # Bob's "WORK" is a tag of his own, spelled as he first gave it, not Alice's "Work".
    assert alices_tags == {"Alice only": 1, "Work": 3}
    assert bobs_tags == {"Bob only": 1, "WORK": 1}
    assert bobs_todo["tags"] == ["Bob only", "WORK"]
    assert await tags_of(client, alice, alices_todos[0]["id"]) == ["Work"]
    assert ids(await list_all(client, alice, tag="work")) == ids(alices_todos[::-1])
    assert ids(await list_all(client, bob, tag="work")) == [bobs_todo["id"]]
    assert await list_all(client, bob, tag="Alice only") == []


async def test_renaming_and_deleting_a_users_tag_leaves_the_other_users_alone(
    client: httpx.AsyncClient, alice: Headers, bob: Headers
) -> None:
    alices_todo = await create_todo(client, alice, tags=["Work"])
    bobs_todo = await create_todo(client, bob, tags=["Work"])
    [bobs_tag] = await list_tags(client, bob)

    await client.patch(f"/tags/{bobs_tag['id']}", json={"name": "Job"}, headers=bob)
    after_rename = await client.get(f"/todos/{alices_todo['id']}", headers=alice)
    await client.delete(f"/tags/{bobs_tag['id']}", headers=bob)
    after_delete = await client.get(f"/todos/{alices_todo['id']}", headers=alice)

    assert after_rename.json() == alices_todo
    assert after_delete.json() == alices_todo
    assert after_delete.headers["etag"] == '"1"'
    assert (await tags_of(client, bob, bobs_todo["id"])) == []


@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("GET", None),
        ("PATCH", {"name": "Stolen"}),
        ("PATCH", {"color": "#000000"}),
        ("PATCH", {"name": "Secret", "color": "#000000"}),
        ("PATCH", {}),
        ("DELETE", None),
    ],
)
async def test_another_users_tag_is_404_and_stays_unchanged(
    client: httpx.AsyncClient,
    alice: Headers,
    bob: Headers,
    method: str,
    body: dict[str, Any] | None,
) -> None:
    todo = await create_todo(client, alice, tags=["Secret"])
    [tag] = await list_tags(client, alice)
    await create_tag(client, bob, "Mine")  # Bob is a known user with tags of his own

    response = await client.request(method, f"/tags/{tag['id']}", json=body, headers=bob)

    problem = assert_problem(response, 404)
    missing = assert_problem(
        await client.request(
            method, "/tags/0190b7a0-0000-7000-8000-000000000000", json=body, headers=bob
        ),
        404,
    )
    assert problem["detail"] == missing["detail"]  # indistinguishable from a missing tag
    assert await list_tags(client, alice) == [tag]
    fetched = await client.get(f"/todos/{todo['id']}", headers=alice)
    assert fetched.json() == todo


async def test_another_users_todo_cannot_be_tagged(
    client: httpx.AsyncClient, alice: Headers, bob: Headers
) -> None:
    todo = await create_todo(client, alice)

    response = await client.patch(f"/todos/{todo['id']}", json={"tags": ["x"]}, headers=bob)

    assert_problem(response, 404)
    assert await list_tags(client, bob) == []
    assert await tags_of(client, alice, todo["id"]) == []


# The database refuses cross-user links, whatever a statement tries.


async def insert_link(
    connection: asyncpg.Connection, user_id: str, todo_id: str, tag_id: str
) -> None:
    # In a savepoint: the expected failure must not abort the test's transaction.
    async with connection.transaction():
        await connection.execute(
            "INSERT INTO todo_tag (user_id, todo_id, tag_id) VALUES ($1, $2::uuid, $3::uuid)",
            user_id,
            todo_id,
            tag_id,
        )


@pytest.fixture
async def two_users(
    client: httpx.AsyncClient, alice: Headers, bob: Headers
) -> dict[str, dict[str, str]]:
    """Each user's id, a todo and a tag (named alike)."""
    found: dict[str, dict[str, str]] = {}
    for name, headers in (("alice", alice), ("bob", bob)):
        todo = await create_todo(client, headers)
        tag = await create_tag(client, headers, "Shared")
        found[name] = {"user": name, "todo": todo["id"], "tag": tag["id"]}
    return found


@pytest.mark.parametrize(
    ("link_user", "todo_of", "tag_of"),
    [
        ("alice", "alice", "bob"),  # Alice's todo, Bob's tag, as Alice
        ("bob", "alice", "bob"),  # the same, as Bob
        ("bob", "bob", "alice"),  # Bob's todo, Alice's tag, as Bob
        ("alice", "bob", "alice"),  # the same, as Alice
        ("bob", "alice", "alice"),  # Alice's todo and tag, but claimed by Bob
        ("alice", "bob", "bob"),  # Bob's todo and tag, but claimed by Alice
    ],
)
async def test_the_database_refuses_a_link_across_users(
    connection: asyncpg.Connection,
    two_users: dict[str, dict[str, str]],
    link_user: str,
    todo_of: str,
    tag_of: str,
) -> None:
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await insert_link(
            connection, link_user, two_users[todo_of]["todo"], two_users[tag_of]["tag"]
        )

    count = await connection.fetchval("SELECT count(*) FROM todo_tag")
    assert count == 0


async def test_the_database_accepts_a_link_within_one_user(
    client: httpx.AsyncClient,
    connection: asyncpg.Connection,
    alice: Headers,
    two_users: dict[str, dict[str, str]],
) -> None:
    own = two_users["alice"]

    await insert_link(connection, "alice", own["todo"], own["tag"])

    assert await tags_of(client, alice, own["todo"]) == ["Shared"]


async def test_deleting_a_user_deletes_their_tags_and_links(
    client: httpx.AsyncClient, connection: asyncpg.Connection, alice: Headers, bob: Headers
) -> None:
    await create_todo(client, alice, tags=["Work"])
    await create_todo(client, bob, tags=["Work"])

    await connection.execute("DELETE FROM \"user\" WHERE id = 'alice'")

    assert await connection.fetchval("SELECT count(*) FROM tag WHERE user_id = 'alice'") == 0
    assert await connection.fetchval("SELECT count(*) FROM todo_tag WHERE user_id = 'alice'") == 0
    assert await connection.fetchval("SELECT count(*) FROM tag WHERE user_id = 'bob'") == 1
    assert await connection.fetchval("SELECT count(*) FROM todo_tag WHERE user_id = 'bob'") == 1
