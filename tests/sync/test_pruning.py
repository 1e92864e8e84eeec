"""Pruning the change log: tombstones older than CHANGES_RETENTION_DAYS go, the user's horizon
(`change_counter.pruned_through`) moves past them, and a token from before the horizon gets
410 — while a token at or after it, and a sync from the beginning, still work.

The requests (`client`), the backdating and pruning itself (on `connection`, through a
SavepointDatabase as the app's requests use it) all run in the test's rolled-back
transaction, so `now()` is one moment throughout.
"""

from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import httpx
import pytest

from backend import maintenance
from backend.db import Database, SavepointDatabase
from backend.sync.repository import prune_log
from tests.support import make_settings
from tests.sync.support import catch_up, changes_page, counter, summary, tombstones
from tests.tags.support import assert_problem
from tests.todos.support import Headers, Todo, create_todo

DAY = 86_400
RETENTION = 30 * DAY

type Prune = Callable[[Database], Awaitable[int | None]]


async def prune_with_prune_log(database: Database) -> int | None:
    return await prune_log(database, keep_seconds=RETENTION)


async def prune_with_maintenance(database: Database) -> int | None:
    """The housekeeping round (and `todo-api prune`), with the default retention."""
    settings = make_settings("postgresql://unused/db", Path("/nonexistent"))
    assert settings.changes_retention_days == 30
    return await maintenance.prune(database, settings)


PRUNERS = [prune_with_prune_log, prune_with_maintenance]


async def backdate(connection: asyncpg.Connection, todo_ids: list[str], days: int) -> None:
    done = await connection.execute(
        "UPDATE todo_tombstone SET deleted_at = now() - make_interval(days => $2) "
        "WHERE todo_id = ANY($1::uuid[])",
        todo_ids,
        days,
    )
    assert done == f"UPDATE {len(todo_ids)}"


async def delete(client: httpx.AsyncClient, headers: Headers, todo: Todo) -> None:
    response = await client.delete(f"/todos/{todo['id']}", headers=headers)
    assert response.status_code == 204, response.text


async def since(client: httpx.AsyncClient, headers: Headers, token: str) -> httpx.Response:
    return await client.get("/todos/changes", params={"since": token}, headers=headers)


def assert_resync(response: httpx.Response) -> None:
    problem = assert_problem(response, 410)
    assert problem["type"].endswith("#resync-required"), problem


@pytest.mark.parametrize("prune", PRUNERS, ids=["prune_log", "maintenance.prune"])
async def test_old_tombstones_go_and_tokens_before_the_horizon_get_410(
    client: httpx.AsyncClient, connection: asyncpg.Connection, alice: Headers, prune: Prune
) -> None:
    """Backdated tombstones are deleted and the horizon moves to the newest of them; a
    token from before it is 410, the token taken right after them still answers exactly
    (the young tombstone after it), and a sync from the beginning still works."""
    a, b, c, d = [await create_todo(client, alice, title=name) for name in "abcd"]
    _, before_deletes = await catch_up(client, alice)
    await delete(client, alice, a)
    await delete(client, alice, b)
    _, after_old_deletes = await catch_up(client, alice, since=before_deletes)
    horizon, _ = await counter(connection, "alice")
    await backdate(connection, [a["id"], b["id"]], days=31)
    await delete(client, alice, c)  # young: kept

    pruned = await prune(SavepointDatabase(connection))

    assert pruned is not None
    assert pruned >= 2
    assert set(await tombstones(connection, "alice")) == {c["id"]}
    assert await counter(connection, "alice") == (horizon + 1, horizon)
    assert_resync(await since(client, alice, before_deletes))
    rest, _ = await catch_up(client, alice, since=after_old_deletes)
    assert summary(rest) == [("delete", c["id"])]
    from_start, _ = await catch_up(client, alice)
    assert summary(from_start) == [("upsert", d["id"]), ("delete", c["id"])]


@pytest.mark.parametrize("prune", PRUNERS, ids=["prune_log", "maintenance.prune"])
async def test_tombstones_younger_than_the_retention_stay(
    client: httpx.AsyncClient, connection: asyncpg.Connection, alice: Headers, prune: Prune
) -> None:
    """Tombstones 29 days old are kept, the horizon does not move, and the oldest token
    still gets every deletion."""
    todos = [await create_todo(client, alice, title=f"t{n}") for n in range(3)]
    _, token = await catch_up(client, alice)
    for todo in todos:
        await delete(client, alice, todo)
    await backdate(connection, [todo["id"] for todo in todos], days=29)

    await prune(SavepointDatabase(connection))

    assert set(await tombstones(connection, "alice")) == {todo["id"] for todo in todos}
    assert (await counter(connection, "alice"))[1] == 0
    changes, _ = await catch_up(client, alice, since=token)
    assert summary(changes) == [("delete", todo["id"]) for todo in todos]


async def test_a_longer_retention_keeps_older_tombstones(
    client: httpx.AsyncClient, connection: asyncpg.Connection, alice: Headers
) -> None:
    """CHANGES_RETENTION_DAYS=60: tombstones 31 days old stay; 61 days old go."""
    kept, dropped = await create_todo(client, alice), await create_todo(client, alice)
    await delete(client, alice, kept)
    await delete(client, alice, dropped)
    await backdate(connection, [kept["id"]], days=31)
    await backdate(connection, [dropped["id"]], days=61)
    settings = make_settings("postgresql://unused/db", Path("/nonexistent"))
    settings = settings.model_copy(update={"changes_retention_days": 60})

    await maintenance.prune(SavepointDatabase(connection), settings)

    assert set(await tombstones(connection, "alice")) == {kept["id"]}


async def test_pruning_one_user_leaves_another_users_horizon_alone(
    client: httpx.AsyncClient, connection: asyncpg.Connection, alice: Headers, bob: Headers
) -> None:
    """Alice's old tombstones go; Bob's young ones, his horizon and his oldest token stay."""
    alices, bobs = await create_todo(client, alice), await create_todo(client, bob)
    _, bob_token = await catch_up(client, bob)
    await delete(client, alice, alices)
    await delete(client, bob, bobs)
    await backdate(connection, [alices["id"]], days=40)

    await prune_with_prune_log(SavepointDatabase(connection))

    assert await tombstones(connection, "alice") == {}
    assert (await counter(connection, "bob"))[1] == 0
    changes, _ = await catch_up(client, bob, since=bob_token)
    assert summary(changes) == [("delete", bobs["id"])]


async def test_a_token_inside_the_newest_pruned_write_gets_410(
    client: httpx.AsyncClient, connection: asyncpg.Connection, alice: Headers
) -> None:
    """A token taken mid-way through one write's tombstones (a clear of three todos, paged
    one at a time) points inside the horizon's own change number: the tombstones after it
    are pruned, so it gets 410, not an answer that silently lacks them; the token after
    the whole write still works."""
    done = [await create_todo(client, alice, title=f"d{n}", completed=True) for n in range(3)]
    _, before_clear = await catch_up(client, alice)
    cleared = await client.delete("/todos", params={"completed": "true"}, headers=alice)
    assert cleared.json() == {"deleted": 3}
    mid_write = (await changes_page(client, alice, since=before_clear, limit=1))["next"]
    _, after_clear = await catch_up(client, alice, since=before_clear)
    await backdate(connection, [todo["id"] for todo in done], days=31)

    await prune_with_prune_log(SavepointDatabase(connection))

    head, horizon = await counter(connection, "alice")
    assert horizon == head
    assert_resync(await since(client, alice, mid_write))
    assert_resync(await since(client, alice, before_clear))
    assert (await changes_page(client, alice, since=after_clear))["changes"] == []


async def test_pruned_fired_reminders_move_the_horizon_too(
    client: httpx.AsyncClient, connection: asyncpg.Connection, alice: Headers
) -> None:
    """Fired reminders older than the retention go like tombstones, and move the horizon
    past their number (an event stream's token from before it could miss them)."""
    todo = await create_todo(client, alice, title="remind me")
    _, token = await catch_up(client, alice)
    seq = await connection.fetchval(
        "UPDATE change_counter SET last_seq = last_seq + 1 WHERE user_id = 'alice' "
        "RETURNING last_seq"
    )
    await connection.execute(
        "INSERT INTO reminder (user_id, todo_id, remind_at, change_seq, fired_at) "
        "VALUES ('alice', $1, now() - interval '40 days', $2, now() - interval '40 days')",
        todo["id"],
        seq,
    )

    await prune_with_prune_log(SavepointDatabase(connection))

    assert await connection.fetchval("SELECT count(*) FROM reminder WHERE user_id = 'alice'") == 0
    assert await counter(connection, "alice") == (seq, seq)
    assert_resync(await since(client, alice, token))
