"""DELETE /todos/{id} and DELETE /todos?completed=true."""

import uuid

import httpx

from tests.todos.support import Headers, create_todo, ids, list_all


async def test_delete_answers_204_and_the_todo_is_gone(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    todo = await create_todo(client, alice)

    response = await client.delete(f"/todos/{todo['id']}", headers=alice)

    assert response.status_code == 204
    assert response.content == b""
    assert (await client.get(f"/todos/{todo['id']}", headers=alice)).status_code == 404


async def test_deleting_twice_is_404(client: httpx.AsyncClient, alice: Headers) -> None:
    todo = await create_todo(client, alice)
    await client.delete(f"/todos/{todo['id']}", headers=alice)

    response = await client.delete(f"/todos/{todo['id']}", headers=alice)

    assert response.status_code == 404


async def test_delete_with_the_current_etag_succeeds(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    todo = await create_todo(client, alice)

    response = await client.delete(f"/todos/{todo['id']}", headers={**alice, "If-Match": '"1"'})

    assert response.status_code == 204


async def test_delete_with_a_stale_etag_is_412_and_the_todo_survives(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    todo = await create_todo(client, alice)
    await client.patch(f"/todos/{todo['id']}", json={"title": "v2"}, headers=alice)

    response = await client.delete(f"/todos/{todo['id']}", headers={**alice, "If-Match": '"1"'})

    assert response.status_code == 412
    assert response.headers["content-type"] == "application/problem+json"
    assert (await client.get(f"/todos/{todo['id']}", headers=alice)).json()["title"] == "v2"


async def test_delete_with_an_etag_naming_no_possible_version_is_412(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    todo = await create_todo(client, alice)

    response = await client.delete(
        f"/todos/{todo['id']}", headers={**alice, "If-Match": '"9999999999"'}
    )

    assert response.status_code == 412


async def test_another_users_todo_is_404_and_survives(
    client: httpx.AsyncClient, alice: Headers, bob: Headers
) -> None:
    todo = await create_todo(client, alice)

    plain = await client.delete(f"/todos/{todo['id']}", headers=bob)
    with_etag = await client.delete(f"/todos/{todo['id']}", headers={**bob, "If-Match": '"1"'})
    missing = await client.delete(f"/todos/{uuid.uuid4()}", headers=bob)

    assert plain.status_code == with_etag.status_code == 404
    assert plain.json() == with_etag.json() == missing.json()
    assert (await client.get(f"/todos/{todo['id']}", headers=alice)).json() == todo


async def test_clearing_completed_deletes_only_the_callers_completed_todos(
    client: httpx.AsyncClient, alice: Headers, bob: Headers
) -> None:
    open_todo = await create_todo(client, alice, title="open")
    for title in ("done 1", "done 2"):
        await create_todo(client, alice, title=title, completed=True)
    bobs_done = await create_todo(client, bob, title="bob's done", completed=True)

    response = await client.delete("/todos", params={"completed": "true"}, headers=alice)

    assert response.status_code == 200
    assert response.json() == {"deleted": 2}
    assert ids(await list_all(client, alice)) == [open_todo["id"]]
    assert ids(await list_all(client, bob)) == [bobs_done["id"]]


async def test_clearing_with_nothing_completed_deletes_nothing(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    await create_todo(client, alice)

    response = await client.delete("/todos", params={"completed": "true"}, headers=alice)

    assert response.json() == {"deleted": 0}
    assert len(await list_all(client, alice)) == 1


async def test_clearing_with_completed_false_is_422(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    await create_todo(client, alice)

    response = await client.delete("/todos", params={"completed": "false"}, headers=alice)

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert len(await list_all(client, alice)) == 1


async def test_clearing_without_completed_is_422(client: httpx.AsyncClient, alice: Headers) -> None:
    response = await client.delete("/todos", headers=alice)

    assert response.status_code == 422
