"""A repository built for user B never reads or changes user A's rows.

Every public method of TodoRepository and UserRepository has a scoping case here, run against
a database holding rows of both users; after each case A's rows must be byte for byte what
they were. The last tests list the repositories' public methods, so a method added without a
scoping case fails the suite until someone writes one.
"""

import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

import pytest
from sqlalchemy import Row, text
from sqlalchemy.ext.asyncio import AsyncSession

from backend.todos.models import Priority, Todo
from backend.todos.pagination import Position, SortOrder
from backend.todos.repository import TodoNotFound, TodoRepository
from backend.todos.schemas import SortKey, TodoCreate, TodoListQuery, TodoStats
from backend.users.models import User
from backend.users.repository import EmailTaken, UserRepository
from backend.users.schemas import UserProfile

A = "scoping-user-a"
B = "scoping-user-b"
PAST = datetime(2020, 1, 1, tzinfo=UTC)


@dataclass
class World:
    session: AsyncSession
    a_todos: list[Todo]
    b_todos: list[Todo]

    @property
    def b_ids(self) -> set[Any]:
        return {todo.id for todo in self.b_todos}

    async def rows_of(self, user_id: str) -> Sequence[Row[Any]]:
        """Every column of every todo and the user row, read with plain SQL."""
        todos = await self.session.execute(
            text("SELECT * FROM todo WHERE user_id = :u ORDER BY id"), {"u": user_id}
        )
        user = await self.session.execute(
            text('SELECT * FROM "user" WHERE id = :u'), {"u": user_id}
        )
        return [*todos.all(), *user.all()]


@pytest.fixture
async def world(session: AsyncSession) -> World:
    """A: three todos (one completed, one overdue); B: two (one completed, none overdue).
    Every title contains "shared", so a text search matches both users' rows."""
    session.add_all(
        [
            User(id=A, name="Alice", email="alice@example.com"),
            User(id=B, name="Bob", email="bob@example.com"),
        ]
    )
    await session.flush()
    a_todos = [
        Todo(user_id=A, title="A shared overdue", due_at=PAST, priority=Priority.high),
        Todo(user_id=A, title="A shared open", priority=Priority.low),
        Todo(user_id=A, title="A shared done", completed=True, completed_at=PAST),
    ]
    b_todos = [
        Todo(user_id=B, title="B shared open", due_at=datetime.now(UTC) + timedelta(days=1)),
        Todo(user_id=B, title="B shared done", completed=True, completed_at=PAST),
    ]
    session.add_all([*a_todos, *b_todos])
    await session.flush()
    return World(session, a_todos, b_todos)


Case = Callable[[World], Awaitable[None]]
TODO_CASES: dict[str, Case] = {}
USER_CASES: dict[str, Case] = {}


def scoping_case(cases: dict[str, Case], method: str) -> Callable[[Case], Case]:
    def register(case: Case) -> Case:
        cases[method] = case
        return case

    return register


def todos_of_b(world: World) -> TodoRepository:
    return TodoRepository(world.session, B)


@scoping_case(TODO_CASES, "get")
async def _get(world: World) -> None:
    repository = todos_of_b(world)
    for todo in world.a_todos:
        with pytest.raises(TodoNotFound):
            await repository.get(todo.id)
    assert (await repository.get(world.b_todos[0].id)).user_id == B


@scoping_case(TODO_CASES, "page")
async def _page(world: World) -> None:
    repository = todos_of_b(world)
    a_last = world.a_todos[0]
    for sort in get_args(SortKey):
        order = SortOrder.parse(sort)
        a_position = Position(key=order.parse_key(order.key_of(a_last)), id=a_last.id)
        for query in (
            TodoListQuery(sort=sort, limit=100),
            TodoListQuery(sort=sort, limit=100, q="shared"),
            TodoListQuery(sort=sort, limit=100, completed=True),
        ):
            rows = await repository.page(query, order, None)
            assert {todo.user_id for todo in rows} <= {B}
            if query.completed is None:
                assert {todo.id for todo in rows} == world.b_ids
            # A cursor made from A's row positions B's page; it never yields A's rows.
            after = await repository.page(query, order, a_position)
            assert {todo.user_id for todo in after} <= {B}


@scoping_case(TODO_CASES, "create")
async def _create(world: World) -> None:
    created = await todos_of_b(world).create(TodoCreate(title="B new"))
    assert created.user_id == B


@scoping_case(TODO_CASES, "update")
async def _update(world: World) -> None:
    repository = todos_of_b(world)
    for todo in world.a_todos:
        for changes in ({"title": "stolen", "completed": True}, {}):
            with pytest.raises(TodoNotFound):
                await repository.update(todo.id, changes)
            # With If-Match: still "not found", never "version mismatch", which would tell B
            # that the id exists.
            with pytest.raises(TodoNotFound):
                await repository.update(todo.id, changes, frozenset({todo.version + 1}))
    updated = await repository.update(world.b_todos[0].id, {"title": "B renamed"})
    assert updated.title == "B renamed"


@scoping_case(TODO_CASES, "delete")
async def _delete(world: World) -> None:
    repository = todos_of_b(world)
    for todo in world.a_todos:
        with pytest.raises(TodoNotFound):
            await repository.delete(todo.id)
        with pytest.raises(TodoNotFound):
            await repository.delete(todo.id, frozenset({todo.version + 1}))
    await repository.delete(world.b_todos[0].id)


@scoping_case(TODO_CASES, "delete_completed")
async def _delete_completed(world: World) -> None:
    assert await todos_of_b(world).delete_completed() == 1


@scoping_case(TODO_CASES, "stats")
async def _stats(world: World) -> None:
    stats = await todos_of_b(world).stats()
    assert stats == TodoStats(total=2, completed=1, active=1, overdue=0)


@scoping_case(USER_CASES, "get")
async def _get_user(world: World) -> None:
    user = await UserRepository(world.session, B).get()
    assert user is not None
    assert user.id == B


def profile(email: str, name: str) -> UserProfile:
    return UserProfile(email=email, name=name, email_verified=True, image=None)


@scoping_case(USER_CASES, "provision")
async def _provision(world: World) -> None:
    repository = UserRepository(world.session, B)
    with pytest.raises(EmailTaken):
        async with world.session.begin_nested():  # the failed INSERT aborts only this part
            await repository.provision(profile(email="alice@example.com", name="Bob"))
    await repository.provision(profile(email="bob@example.org", name="Robert"))
    name = await world.session.scalar(text('SELECT name FROM "user" WHERE id = :u'), {"u": B})
    assert name == "Robert"


@pytest.mark.parametrize(
    ("repository", "method", "case"),
    [
        *(("TodoRepository", method, case) for method, case in TODO_CASES.items()),
        *(("UserRepository", method, case) for method, case in USER_CASES.items()),
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
    ("cls", "cases"), [(TodoRepository, TODO_CASES), (UserRepository, USER_CASES)]
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


@pytest.mark.parametrize("cls", [TodoRepository, UserRepository])
def test_a_repository_cannot_be_built_without_a_user_id(cls: type) -> None:
    parameters = list(inspect.signature(cls).parameters.values())
    assert [parameter.name for parameter in parameters] == ["connection", "user_id"]
    assert all(parameter.default is inspect.Parameter.empty for parameter in parameters)
