"""GET /todos/{id}: one todo with its ETag, and nothing of anyone else's."""

import uuid

import httpx

from tests.todos.support import Headers, create_todo


async def test_get_returns_the_todo_with_its_etag(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    todo = await create_todo(client, alice, title="Read me")

    response = await client.get(f"/todos/{todo['id']}", headers=alice)

    assert response.status_code == 200
    assert response.json() == todo
    assert response.headers["etag"] == '"1"'


async def test_unknown_id_is_404(client: httpx.AsyncClient, alice: Headers) -> None:
    response = await client.get(f"/todos/{uuid.uuid4()}", headers=alice)

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_another_users_todo_is_indistinguishable_from_a_missing_one(
    client: httpx.AsyncClient, alice: Headers, bob: Headers
) -> None:
    todo = await create_todo(client, alice, title="Alice's")

    foreign = await client.get(f"/todos/{todo['id']}", headers=bob)
    missing = await client.get(f"/todos/{uuid.uuid4()}", headers=bob)

    assert foreign.status_code == missing.status_code == 404
    assert foreign.json() == missing.json()
    assert foreign.headers["content-type"] == missing.headers["content-type"]
    assert "etag" not in foreign.headers


async def test_malformed_id_is_422(client: httpx.AsyncClient, alice: Headers) -> None:
    response = await client.get("/todos/not-a-uuid", headers=alice)

    assert response.status_code == 422
    assert [error["loc"] for error in response.json()["errors"]] == [["path", "todo_id"]]
