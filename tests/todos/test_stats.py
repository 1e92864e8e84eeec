"""GET /todos/stats: the caller's counts."""

from datetime import UTC, datetime, timedelta

import httpx

from tests.todos.support import Headers, create_todo


def iso(moment: datetime) -> str:
    return moment.isoformat()


async def test_stats_of_a_new_user_are_zero(client: httpx.AsyncClient, alice: Headers) -> None:
    response = await client.get("/todos/stats", headers=alice)

    assert response.status_code == 200
    assert response.json() == {"total": 0, "completed": 0, "active": 0, "overdue": 0}


async def test_stats_count_the_callers_todos_only(
    client: httpx.AsyncClient, alice: Headers, bob: Headers
) -> None:
    now = datetime.now(UTC)
    past, future = iso(now - timedelta(days=1)), iso(now + timedelta(days=1))
    await create_todo(client, alice, title="overdue", due_at=past)
    await create_todo(client, alice, title="done late", due_at=past, completed=True)
    await create_todo(client, alice, title="due later", due_at=future)
    await create_todo(client, alice, title="no due date")
    await create_todo(client, alice, title="done", completed=True)
    await create_todo(client, bob, title="bob's overdue", due_at=past)
    await create_todo(client, bob, title="bob's done", completed=True)

    response = await client.get("/todos/stats", headers=alice)

    assert response.json() == {"total": 5, "completed": 2, "active": 3, "overdue": 1}
