"""PATCH /todos/{id}: partial updates, completed_at bookkeeping, versions and If-Match."""

import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from tests.todos.support import Headers, Todo, create_todo


async def patch(
    client: httpx.AsyncClient, headers: Headers, todo: Todo, changes: dict[str, Any], **extra: str
) -> httpx.Response:
    return await client.patch(f"/todos/{todo['id']}", json=changes, headers={**headers, **extra})


async def test_patch_changes_only_the_fields_sent(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    todo = await create_todo(
        client,
        alice,
        title="Old",
        description="Keep me",
        priority="low",
        due_at="2030-01-01T00:00:00Z",
    )

    response = await patch(client, alice, todo, {"title": "  New  ", "priority": "high"})

    assert response.status_code == 200
    updated = response.json()
    assert updated["title"] == "New"
    assert updated["priority"] == "high"
    unchanged = ("id", "description", "completed", "completed_at", "due_at", "created_at")
    assert {field: updated[field] for field in unchanged} == {
        field: todo[field] for field in unchanged
    }


async def test_patch_answers_with_the_new_etag(client: httpx.AsyncClient, alice: Headers) -> None:
    todo = await create_todo(client, alice)

    response = await patch(client, alice, todo, {"title": "Renamed"})

    assert response.headers["etag"] == '"2"'
    fetched = await client.get(f"/todos/{todo['id']}", headers=alice)
    assert fetched.json() == response.json()
    assert fetched.headers["etag"] == '"2"'


async def test_every_change_increments_the_version(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    todo = await create_todo(client, alice)

    versions = [
        (await patch(client, alice, todo, {"title": f"v{n}"})).json()["version"] for n in range(3)
    ]

    assert versions == [2, 3, 4]


@pytest.mark.parametrize("field", ["description", "due_at"])
async def test_null_clears_a_nullable_field(
    client: httpx.AsyncClient, alice: Headers, field: str
) -> None:
    todo = await create_todo(client, alice, description="text", due_at="2030-01-01T00:00:00Z")

    response = await patch(client, alice, todo, {field: None})

    assert response.status_code == 200
    assert response.json()[field] is None


@pytest.mark.parametrize("field", ["title", "completed", "priority"])
async def test_null_for_a_required_field_is_422(
    client: httpx.AsyncClient, alice: Headers, field: str
) -> None:
    todo = await create_todo(client, alice)

    response = await patch(client, alice, todo, {field: None})

    assert response.status_code == 422
    assert [error["loc"] for error in response.json()["errors"]] == [["body", field]]


@pytest.mark.parametrize(
    ("field", "value"),
    [("user_id", "bob"), ("id", "01900000-0000-7000-8000-000000000000"), ("version", 9)],
)
async def test_unknown_fields_are_rejected_not_applied(
    client: httpx.AsyncClient, alice: Headers, field: str, value: Any
) -> None:
    todo = await create_todo(client, alice)

    response = await patch(client, alice, todo, {field: value})

    assert response.status_code == 422
    assert (await client.get(f"/todos/{todo['id']}", headers=alice)).json() == todo


async def test_invalid_values_are_422(client: httpx.AsyncClient, alice: Headers) -> None:
    todo = await create_todo(client, alice)

    for changes in ({"title": "  "}, {"priority": "urgent"}, {"due_at": "2030-01-01T00:00:00"}):
        response = await patch(client, alice, todo, changes)
        assert response.status_code == 422, changes


async def test_completing_sets_completed_at(client: httpx.AsyncClient, alice: Headers) -> None:
    todo = await create_todo(client, alice)

    updated = (await patch(client, alice, todo, {"completed": True})).json()

    assert updated["completed"] is True
    assert updated["completed_at"] is not None


async def test_reopening_clears_completed_at(client: httpx.AsyncClient, alice: Headers) -> None:
    todo = await create_todo(client, alice, completed=True)

    updated = (await patch(client, alice, todo, {"completed": False})).json()

    assert updated["completed"] is False
    assert updated["completed_at"] is None


async def test_completing_again_keeps_the_first_completed_at(
    client: httpx.AsyncClient, alice: Headers, connection: asyncpg.Connection
) -> None:
    todo = await create_todo(client, alice, completed=True)
    # Every request of a test shares one transaction, hence one now(): backdate the first
    # completion so that a second one at now() would show.
    await connection.execute(
        "UPDATE todo SET completed_at = completed_at - interval '1 day' WHERE id = $1",
        uuid.UUID(todo["id"]),
    )
    first = (await client.get(f"/todos/{todo['id']}", headers=alice)).json()["completed_at"]

    updated = (await patch(client, alice, todo, {"completed": True})).json()

    assert updated["completed"] is True
    assert updated["completed_at"] == first


async def test_empty_patch_changes_nothing(client: httpx.AsyncClient, alice: Headers) -> None:
    todo = await create_todo(client, alice)

    response = await patch(client, alice, todo, {})

    assert response.status_code == 200
    assert response.json() == todo
    assert response.headers["etag"] == '"1"'


async def test_if_match_with_the_current_etag_applies_the_change(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    todo = await create_todo(client, alice)

    response = await patch(client, alice, todo, {"title": "New"}, **{"If-Match": '"1"'})

    assert response.status_code == 200
    assert response.json()["title"] == "New"


async def test_if_match_with_a_stale_etag_is_412_and_changes_nothing(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    todo = await create_todo(client, alice)
    current = (await patch(client, alice, todo, {"title": "Second"})).json()

    response = await patch(client, alice, todo, {"title": "Lost update"}, **{"If-Match": '"1"'})

    assert response.status_code == 412
    assert response.headers["content-type"] == "application/problem+json"
    assert (await client.get(f"/todos/{todo['id']}", headers=alice)).json() == current


async def test_if_match_star_matches_any_version(client: httpx.AsyncClient, alice: Headers) -> None:
    todo = await create_todo(client, alice)
    await patch(client, alice, todo, {"title": "Second"})

    response = await patch(client, alice, todo, {"title": "Third"}, **{"If-Match": "*"})

    assert response.status_code == 200
    assert response.json()["version"] == 3


async def test_if_match_with_a_weak_tag_never_matches(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    todo = await create_todo(client, alice)

    response = await patch(client, alice, todo, {"title": "New"}, **{"If-Match": 'W/"1"'})

    assert response.status_code == 412


async def test_if_match_naming_a_version_beyond_any_is_412(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    todo = await create_todo(client, alice)

    response = await patch(client, alice, todo, {"title": "New"}, **{"If-Match": '"9999999999"'})

    assert response.status_code == 412


async def test_if_match_listing_the_current_etag_among_others_applies(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    todo = await create_todo(client, alice)

    response = await patch(client, alice, todo, {"title": "New"}, **{"If-Match": '"7", "1"'})

    assert response.status_code == 200


async def test_empty_patch_with_a_stale_etag_is_412(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    todo = await create_todo(client, alice)

    response = await patch(client, alice, todo, {}, **{"If-Match": '"2"'})

    assert response.status_code == 412


async def test_another_users_todo_is_404(
    client: httpx.AsyncClient, alice: Headers, bob: Headers
) -> None:
    todo = await create_todo(client, alice)

    response = await patch(client, bob, todo, {"title": "Mine now"})

    assert response.status_code == 404
    assert (await client.get(f"/todos/{todo['id']}", headers=alice)).json() == todo


@pytest.mark.parametrize("if_match", ['"1"', "*", '"2"'])
async def test_another_users_todo_is_404_even_with_if_match(
    client: httpx.AsyncClient, alice: Headers, bob: Headers, if_match: str
) -> None:
    todo = await create_todo(client, alice)

    response = await patch(client, bob, todo, {"title": "Mine now"}, **{"If-Match": if_match})

    assert response.status_code == 404
    assert (await client.get(f"/todos/{todo['id']}", headers=alice)).json() == todo
