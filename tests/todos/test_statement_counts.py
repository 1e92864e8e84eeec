"""Each everyday request of a known user costs one SQL statement (transaction control aside):
no separate user lookup, no COUNT, no re-read after a write."""

import httpx
import pytest

from tests.todos.support import Headers, create_todo


@pytest.fixture
async def known_alice(client: httpx.AsyncClient, alice: Headers) -> Headers:
    """Alice after her first request, which provisioned her row."""
    assert (await client.get("/todos", headers=alice)).status_code == 200
    return alice


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/todos", None, 200),
        ("GET", "/todos/{id}", None, 200),
        ("POST", "/todos", {"title": "another"}, 201),
        ("PATCH", "/todos/{id}", {"title": "renamed", "completed": True}, 200),
        ("DELETE", "/todos/{id}", None, 204),
        ("GET", "/todos/stats", None, 200),
        ("DELETE", "/todos?completed=true", None, 200),
    ],
    ids=["list", "get", "create", "update", "delete", "stats", "clear-completed"],
)
async def test_a_known_users_request_runs_one_statement(
    client: httpx.AsyncClient,
    known_alice: Headers,
    statements: list[str],
    method: str,
    path: str,
    body: dict[str, object] | None,
    status: int,
) -> None:
    todo = await create_todo(client, known_alice)
    statements.clear()

    response = await client.request(
        method, path.format(id=todo["id"]), json=body, headers=known_alice
    )

    assert response.status_code == status
    assert len(statements) == 1, statements


async def test_a_new_users_first_request_adds_one_upsert(
    client: httpx.AsyncClient, alice: Headers, statements: list[str]
) -> None:
    response = await client.get("/todos", headers=alice)

    assert response.status_code == 200
    assert [statement.split()[0] for statement in statements] == ["INSERT", "SELECT"]
