"""Every write stamps what it writes: each API write that creates, changes or deletes todos
gives exactly those todos (or their tombstones) a change number newer than every earlier one,
the user's counter ends at the newest, and nothing else is restamped. And every statement
of backend.todos.statements and backend.tags.statements that writes todo rows sets
change_seq (or, deleting, leaves a tombstone) — a statement added without it fails here
before any client misses a change.
"""

import itertools
import re
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import httpx
import pytest

from backend.sql import Statement
from backend.tags import statements as tag_statements
from backend.todos import statements as todo_statements
from tests.sync.support import counter, tombstones
from tests.tags.support import create_tag
from tests.todos.support import Headers, create_todo

USER = "alice"

type State = dict[str, tuple[int, int, list[str]]]  # id: (version, change_seq, tags)


async def todo_state(connection: asyncpg.Connection) -> State:
    rows = await connection.fetch(
        "SELECT todo.id, todo.version, todo.change_seq, "
        "  array(SELECT tag.name FROM todo_tag JOIN tag ON tag.id = todo_tag.tag_id "
        "        WHERE todo_tag.todo_id = todo.id ORDER BY tag.name) AS tags "
        "FROM todo WHERE todo.user_id = $1",
        USER,
    )
    return {str(row["id"]): (row["version"], row["change_seq"], list(row["tags"])) for row in rows}


async def assert_stamped(
    connection: asyncpg.Connection, write: Callable[[], Awaitable[Any]]
) -> dict[str, set[str]]:
    """Runs `write` and checks its stamps; returns the ids it wrote and the ids it deleted."""
    head_before, _ = await counter(connection, USER)
    before, gone_before = await todo_state(connection), await tombstones(connection, USER)
    await write()
    head, _ = await counter(connection, USER)
    after, gone_after = await todo_state(connection), await tombstones(connection, USER)

    written = {
        todo_id
        for todo_id, (version, _, tags) in after.items()
        if todo_id not in before or before[todo_id][0] != version or before[todo_id][2] != tags
    }
    deleted = set(before) - set(after)
    assert written or deleted, "the write wrote nothing"
    assert set(gone_after) - set(gone_before) == deleted, "a delete without its tombstone"
    new_stamps = [after[todo_id][1] for todo_id in written] + [gone_after[i] for i in deleted]
    for todo_id, (version, seq, _tags) in after.items():
        if todo_id in written:
            assert head_before < seq <= head, f"{todo_id} written but not stamped anew"
            if todo_id in before:
                assert version > before[todo_id][0], f"{todo_id} changed, same version"
        else:
            assert seq == before[todo_id][1], f"{todo_id} restamped though untouched"
    for todo_id in deleted:
        assert head_before < gone_after[todo_id] <= head
    assert max(new_stamps) == head, "the counter is not at the newest stamp"
    return {"written": written, "deleted": deleted}


async def ok(response: Awaitable[httpx.Response]) -> httpx.Response:
    answered = await response
    assert answered.is_success, answered.text
    return answered


async def test_every_api_write_stamps_exactly_what_it_writes(
    client: httpx.AsyncClient, connection: asyncpg.Connection, alice: Headers
) -> None:
    """Each kind of write, one after the other, checked by assert_stamped: creates (plain,
    tagged with new and existing tags, idempotent), PATCHes (fields, If-Match, tags only,
    completion of a recurring todo with its successor, reopening), deletes (plain, If-Match,
    clearing completed ones), tag rename and tag delete."""
    home = await create_tag(client, alice, "home")
    await create_todo(client, alice, title="bystander", tags=["home"])
    todo: dict[str, Any] = {}

    def guarded(version: int) -> Headers:
        return {**alice, "If-Match": f'"{version}"'}

    async def create(**fields: Any) -> None:
        todo.update(await create_todo(client, alice, **fields))

    def patch(todo_id: str, headers: Headers = alice, **changes: Any) -> Awaitable[Any]:
        return ok(client.patch(f"/todos/{todo_id}", json=changes, headers=headers))

    def request(method: str, url: str, headers: Headers = alice, **kwargs: Any) -> Awaitable[Any]:
        return ok(client.request(method, url, headers=headers, **kwargs))

    await assert_stamped(connection, lambda: create(title="plain"))
    plain = todo["id"]
    wrote = await assert_stamped(connection, lambda: create(title="t", tags=["home", "new"]))
    assert wrote["written"] == {todo["id"]}
    tagged = todo["id"]
    keyed = {**alice, "Idempotency-Key": "stamp"}
    await assert_stamped(connection, lambda: request("POST", "/todos", keyed, json={"title": "k"}))

    await assert_stamped(connection, lambda: patch(plain, title="renamed"))
    await assert_stamped(connection, lambda: patch(plain, guarded(2), priority="low"))
    await assert_stamped(connection, lambda: patch(plain, tags=["home", "third"]))
    await assert_stamped(connection, lambda: patch(plain, completed=True))
    await assert_stamped(connection, lambda: patch(plain, completed=False))

    await create(title="daily", recurrence="FREQ=DAILY", due_at="2030-01-10T08:00:00Z")
    recurring = todo["id"]
    wrote = await assert_stamped(connection, lambda: patch(recurring, completed=True))
    assert len(wrote["written"]) == 2
    assert recurring in wrote["written"]
    wrote = await assert_stamped(
        connection, lambda: patch(recurring, completed=False, tags=["home"])
    )
    assert wrote["written"] == {recurring}

    await create(title="guarded delete")
    await assert_stamped(connection, lambda: request("DELETE", f"/todos/{todo['id']}", guarded(1)))
    await assert_stamped(connection, lambda: request("DELETE", f"/todos/{tagged}"))
    await create(title="done", completed=True)
    await create(title="done too", completed=True)
    wrote = await assert_stamped(connection, lambda: request("DELETE", "/todos?completed=true"))
    assert len(wrote["deleted"]) == 2

    wrote = await assert_stamped(
        connection,
        lambda: request("PATCH", f"/tags/{home['id']}", json={"name": "house"}),
    )
    assert len(wrote["written"]) == 3  # bystander, plain and the recurring todo
    wrote = await assert_stamped(connection, lambda: request("DELETE", f"/tags/{home['id']}"))
    assert len(wrote["written"]) == 3


# -- every statement --------------------------------------------------------------------------

WRITES_TODOS = re.compile(r"\b(INSERT INTO todo \(|UPDATE todo SET|DELETE FROM todo WHERE)")


def all_statements() -> dict[str, Statement]:
    """The module-level statements of both modules, and each shape of the cached ones."""
    found: dict[str, Statement] = {}
    for module in (todo_statements, tag_statements):
        for name, value in vars(module).items():
            if isinstance(value, Statement):
                found[f"{module.__name__}.{name}"] = value
    for fields in (frozenset(), frozenset({"title"}), frozenset({"completed", "next_id"})):
        for guarded, tagged, cannot_spawn in itertools.product([False, True], repeat=3):
            shape = f"update_one({sorted(fields)}, {guarded}, {tagged}, {cannot_spawn})"
            found[shape] = todo_statements.update_one(
                fields, guarded=guarded, tagged=tagged, cannot_spawn=cannot_spawn
            )
    for guarded in (False, True):
        found[f"delete_one({guarded})"] = todo_statements.delete_one(guarded=guarded)
    for fields, statement in tag_statements.UPDATES.items():
        found[f"tags.update_one({sorted(fields)})"] = statement
    return found


STATEMENTS = all_statements()
TODO_WRITES = {name: s for name, s in STATEMENTS.items() if WRITES_TODOS.search(s.sql)}


def test_the_statements_that_write_todos_are_all_found() -> None:
    """The scan below sees every kind of todo write (so an empty scan cannot pass)."""
    assert {"backend.todos.statements.INSERT", "backend.todos.statements.SPAWN"} <= set(TODO_WRITES)
    assert {"delete_one(False)", "backend.todos.statements.CLEAR_COMPLETED"} <= set(TODO_WRITES)
    assert "backend.tags.statements.DELETE" in TODO_WRITES
    assert "tags.update_one(['name'])" in TODO_WRITES
    assert "tags.update_one(['color'])" not in TODO_WRITES  # a color is not in a todo


@pytest.mark.parametrize("name", sorted(TODO_WRITES))
def test_each_statement_that_writes_todos_takes_a_number_and_stamps_it(name: str) -> None:
    """It advances the user's counter, and sets change_seq from it on every todo it
    inserts or updates, or inserts a tombstone for every todo it deletes."""
    sql = TODO_WRITES[name].sql
    assert "INSERT INTO change_counter" in sql
    assert "ON CONFLICT (user_id) DO UPDATE" in sql
    for insert in re.finditer(r"INSERT INTO todo \(([^)]*)\)", sql):
        assert "change_seq" in insert.group(1).split(", "), name
    for update in re.finditer(r"UPDATE todo SET (.*?) WHERE", sql, re.DOTALL):
        assert "change_seq=(SELECT advanced.seq" in update.group(1), name
    if "DELETE FROM todo WHERE" in sql:
        assert re.search(r"INSERT INTO todo_tombstone \(user_id, change_seq, todo_id\)", sql)
