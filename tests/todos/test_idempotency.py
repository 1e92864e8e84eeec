"""POST /todos with Idempotency-Key: a retry gets the first response, never a second todo."""

import httpx
import pytest

from tests.todos.support import Headers, list_all


async def post(
    client: httpx.AsyncClient, headers: Headers, key: str, **body: object
) -> httpx.Response:
    return await client.post("/todos", json=body, headers={**headers, "Idempotency-Key": key})


async def test_first_request_creates_the_todo(client: httpx.AsyncClient, alice: Headers) -> None:
    response = await post(client, alice, '"key-1"', title="Buy milk")

    assert response.status_code == 201
    assert response.headers["location"] == f"/todos/{response.json()['id']}"
    assert response.headers["etag"] == '"1"'
    assert "idempotent-replayed" not in response.headers


async def test_retry_replays_the_first_response_without_a_second_todo(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    first = await post(client, alice, '"key-1"', title="Buy milk")

    retry = await post(client, alice, '"key-1"', title="Buy milk")

    assert retry.status_code == first.status_code == 201
    assert retry.json() == first.json()
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.headers["location"] == first.headers["location"]
    assert retry.headers["etag"] == first.headers["etag"]
    assert len(await list_all(client, alice)) == 1


async def test_replay_is_the_original_response_even_after_a_change(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    first = await post(client, alice, "key-1", title="Buy milk")
    await client.patch(first.headers["location"], json={"title": "Buy oat milk"}, headers=alice)

    retry = await post(client, alice, "key-1", title="Buy milk")

    assert retry.json() == first.json()


async def test_bare_and_quoted_keys_are_the_same_key(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    first = await post(client, alice, "key-1", title="Buy milk")

    retry = await post(client, alice, '"key-1"', title="Buy milk")

    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.json() == first.json()


async def test_same_key_with_another_body_is_422(client: httpx.AsyncClient, alice: Headers) -> None:
    await post(client, alice, "key-1", title="Buy milk")

    response = await post(client, alice, "key-1", title="Buy bread")

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert [todo["title"] for todo in await list_all(client, alice)] == ["Buy milk"]


async def test_keys_are_per_user(client: httpx.AsyncClient, alice: Headers, bob: Headers) -> None:
    alices = await post(client, alice, "shared-key", title="Buy milk")

    bobs = await post(client, bob, "shared-key", title="Buy milk")

    assert bobs.status_code == 201
    assert "idempotent-replayed" not in bobs.headers
    assert bobs.json()["id"] != alices.json()["id"]
    assert len(await list_all(client, alice)) == len(await list_all(client, bob)) == 1


async def test_different_keys_create_different_todos(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    await post(client, alice, "key-1", title="Buy milk")
    await post(client, alice, "key-2", title="Buy milk")

    assert len(await list_all(client, alice)) == 2


async def test_a_failed_request_does_not_use_up_its_key(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    rejected = await post(client, alice, "key-1", title="")

    accepted = await post(client, alice, "key-1", title="Fixed")

    assert rejected.status_code == 422
    assert accepted.status_code == 201
    assert "idempotent-replayed" not in accepted.headers


@pytest.mark.parametrize(
    "key", [b"", b"has space", b"x" * 256, "é".encode()], ids=["empty", "space", "long", "utf-8"]
)
async def test_malformed_key_is_422(client: httpx.AsyncClient, alice: Headers, key: bytes) -> None:
    headers = [(b"Idempotency-Key", key), *((k.encode(), v.encode()) for k, v in alice.items())]

    response = await client.post("/todos", json={"title": "x"}, headers=headers)

    assert response.status_code == 422
    assert await list_all(client, alice) == []
