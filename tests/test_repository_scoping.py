"""A repository built for user B never reads or changes user A's rows.

Every public method of TodoRepository, UserRepository and IdempotencyStore has a scoping case
here, run against a database holding rows of both users; after each case A's rows must be
byte for byte what they were. The last tests list the repositories' public methods, so a
method added without a scoping case fails the suite until someone writes one.
"""

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from backend.idempotency import IdempotencyStore, KeyReused
from backend.todos.models import Priority
from backend.todos.pagination import SORT_KEYS, Position, SortOrder
from backend.todos.records import NewTodo, TodoChanges, TodoFilter, TodoRecord, TodoStats
from backend.todos.repository import TodoRepository
from backend.users.errors import EmailTaken
from backend.users.records import UserProfile
from backend.users.repository import UserRepository

A = "scoping-user-a"
B = "scoping-user-b"
PAST = datetime(2020, 1, 1, tzinfo=UTC)


@dataclass
class World:
    connection: asyncpg.Connection
    a_todos: list[TodoRecord]
    b_todos: list[TodoRecord]

    @property
    def b_ids(self) -> set[Any]:
        return {todo.id for todo in self.b_todos}

    async def rows_of(self, user_id: str) -> list[asyncpg.Record]:
        """Every column of the user's todos, idempotency keys and user row, in plain SQL."""
        rows: list[asyncpg.Record] = []
        for table in ("todo", "idempotency_key"):
            rows += await self.connection.fetch(
                f"SELECT * FROM {table} WHERE user_id = $1 ORDER BY 1, 2",  # noqa: S608
                user_id,
            )
        rows += await self.connection.fetch('SELECT * FROM "user" WHERE id = $1', user_id)
        return rows


async def todos_for(connection: asyncpg.Connection, user: str, *todos: NewTodo) -> list[Any]:
    repository = TodoRepository(connection, user)
    return [await repository.create(todo) for todo in todos]


@pytest.fixture
async def world(connection: asyncpg.Connection) -> World:
    """A: three todos (one completed, one overdue) and an idempotency key; B: two todos (one
    completed, none overdue). Every title contains "shared", so a search matches both."""
    await connection.executemany(
        'INSERT INTO "user" (id, name, email, "emailVerified") VALUES ($1, $2, $3, false)',
        [(A, "Alice", "alice@example.com"), (B, "Bob", "bob@example.com")],
    )
    a_todos = await todos_for(
        connection,
        A,
        NewTodo(title="A shared overdue", due_at=PAST, priority=Priority.high),
        NewTodo(title="A shared open", priority=Priority.low),
        NewTodo(title="A shared done", completed=True),
    )
    b_todos = await todos_for(
        connection,
        B,
        NewTodo(title="B shared open", due_at=datetime.now(UTC) + timedelta(days=1)),
        NewTodo(title="B shared done", completed=True),
    )
    await IdempotencyStore(connection, A).claim("shared-key", "a-hash")
    await IdempotencyStore(connection, A).save("shared-key", "a-hash", b'{"a": 1}')
    return World(connection, a_todos, b_todos)


Case = Callable[[World], Awaitable[None]]
TODO_CASES: dict[str, Case] = {}
USER_CASES: dict[str, Case] = {}
KEY_CASES: dict[str, Case] = {}


def scoping_case(cases: dict[str, Case], method: str) -> Callable[[Case], Case]:
    def register(case: Case) -> Case:
        cases[method] = case
        return case

    return register


def todos_of_b(world: World) -> TodoRepository:
    return TodoRepository(world.connection, B)


@scoping_case(TODO_CASES, "get")
async def _get(world: World) -> None:
    repository = todos_of_b(world)
    for todo in world.a_todos:
        assert await repository.get(todo.id) is None
    assert await repository.get(world.b_todos[0].id) == world.b_todos[0]


@scoping_case(TODO_CASES, "exists")
async def _exists(world: World) -> None:
    repository = todos_of_b(world)
    for todo in world.a_todos:
        assert await repository.exists(todo.id) is False
    assert await repository.exists(world.b_todos[0].id) is True


@scoping_case(TODO_CASES, "page")
async def _page(world: World) -> None:
    repository = todos_of_b(world)
    a_last = world.a_todos[0]
    for sort in SORT_KEYS:
        order = SortOrder.parse(sort)
        a_position = Position(key=order.parse_key(order.key_of(a_last)), id=a_last.id)
        for where in (TodoFilter(), TodoFilter(text="shared"), TodoFilter(completed=True)):
            todos = await repository.page(where, order, 100, None)
            assert {todo.id for todo in todos} <= world.b_ids
            if where.completed is None:
                assert {todo.id for todo in todos} == world.b_ids
            # A cursor made from A's row positions B's page; it never yields A's rows.
            after = await repository.page(where, order, 100, a_position)
            assert {todo.id for todo in after} <= world.b_ids


@scoping_case(TODO_CASES, "create")
async def _create(world: World) -> None:
    created = await todos_of_b(world).create(NewTodo(title="B new"))
    owner = await world.connection.fetchval("SELECT user_id FROM todo WHERE id = $1", created.id)
    assert owner == B


@scoping_case(TODO_CASES, "update")
async def _update(world: World) -> None:
    repository = todos_of_b(world)
    for todo in world.a_todos:
        for changes in (TodoChanges(title="stolen", completed=True), TodoChanges(title="x")):
            assert await repository.update(todo.id, changes) is None
            assert await repository.update(todo.id, changes, frozenset({todo.version})) is None
    updated = await repository.update(world.b_todos[0].id, TodoChanges(title="B renamed"))
    assert updated is not None
    assert updated.title == "B renamed"


@scoping_case(TODO_CASES, "delete")
async def _delete(world: World) -> None:
    repository = todos_of_b(world)
    for todo in world.a_todos:
        assert await repository.delete(todo.id) is False
        assert await repository.delete(todo.id, frozenset({todo.version})) is False
    assert await repository.delete(world.b_todos[0].id) is True


@scoping_case(TODO_CASES, "delete_completed")
async def _delete_completed(world: World) -> None:
    assert await todos_of_b(world).delete_completed() == 1


@scoping_case(TODO_CASES, "stats")
async def _stats(world: World) -> None:
    stats = await todos_of_b(world).stats()
    assert stats == TodoStats(total=2, completed=1, active=1, overdue=0)


@scoping_case(USER_CASES, "get")
async def _get_user(world: World) -> None:
    user = await UserRepository(world.connection, B).get()
    assert user is not None
    assert user.id == B


@scoping_case(USER_CASES, "exists")
async def _user_exists(world: World) -> None:
    assert await UserRepository(world.connection, B).exists() is True
    assert await UserRepository(world.connection, B + "-nobody").exists() is False


def profile(email: str, name: str) -> UserProfile:
    return UserProfile(email=email, name=name, email_verified=True, image=None)


@scoping_case(USER_CASES, "provision")
async def _provision(world: World) -> None:
    repository = UserRepository(world.connection, B)
    with pytest.raises(EmailTaken):
        async with world.connection.transaction():  # the failed INSERT aborts only this part
            await repository.provision(profile(email="alice@example.com", name="Bob"))
    await repository.provision(profile(email="bob@example.org", name="Robert"))
    name = await world.connection.fetchval('SELECT name FROM "user" WHERE id = $1', B)
    assert name == "Robert"


@scoping_case(KEY_CASES, "claim")
async def _claim(world: World) -> None:
    store = IdempotencyStore(world.connection, B)
    async with world.connection.transaction():
        assert await store.claim("shared-key", "b-hash") is None  # A's key is not B's


@scoping_case(KEY_CASES, "save")
async def _save(world: World) -> None:
    store = IdempotencyStore(world.connection, B)
    async with world.connection.transaction():
        await store.claim("shared-key", "b-hash")
        await store.save("shared-key", "b-hash", b'{"b": 2}')
        assert await store.claim("shared-key", "b-hash") == '{"b": 2}'
        with pytest.raises(KeyReused):
            await store.claim("shared-key", "a-hash")


@pytest.mark.parametrize(
    ("repository", "method", "case"),
    [
        *(("TodoRepository", method, case) for method, case in TODO_CASES.items()),
        *(("UserRepository", method, case) for method, case in USER_CASES.items()),
        *(("IdempotencyStore", method, case) for method, case in KEY_CASES.items()),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
async def test_a_repository_for_b_never_touches_the_rows_of_a(
    world: World, repository: str, method: str, case: Case
) -> None:
    a_before = await world.rows_of(A)

    await case(world)

    assert await world.rows_of(A) == a_before


def public_methods(cls: type) -> set[str]:
    return {
        name
        for name, member in inspect.getmembers(cls)
        if not name.startswith("_") and (inspect.isfunction(member) or inspect.ismethod(member))
    }


@pytest.mark.parametrize(
    ("cls", "cases"),
    [(TodoRepository, TODO_CASES), (UserRepository, USER_CASES), (IdempotencyStore, KEY_CASES)],
)
def test_every_public_repository_method_has_a_scoping_case(
    cls: type, cases: dict[str, Case]
) -> None:
    uncovered = public_methods(cls) - set(cases)
    assert not uncovered, (
        f"{cls.__name__} gained {sorted(uncovered)}: add a case to "
        f"tests/test_repository_scoping.py proving it cannot reach another user's rows"
    )
    assert set(cases) <= public_methods(cls), "a scoping case names a method that is gone"


@pytest.mark.parametrize("cls", [TodoRepository, UserRepository, IdempotencyStore])
def test_a_repository_cannot_be_built_without_a_user_id(cls: type) -> None:
    parameters = list(inspect.signature(cls).parameters.values())
    assert [parameter.name for parameter in parameters] == ["connection", "user_id"]
    assert all(parameter.default is inspect.Parameter.empty for parameter in parameters)
