"""A repository built for user B never reads or changes user A's rows.

Every public method of TodoRepository, TagRepository, UserRepository and IdempotencyStore has
a scoping case here, run against a database holding rows of both users; after each case A's
rows must be byte for byte what they were. The last tests list the repositories' public
methods, so a method added without a scoping case fails the suite until someone writes one.
"""

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from uuid_utils.compat import uuid7

from backend.idempotency import IdempotencyStore, KeyReused
from backend.tags.errors import TagNameTaken
from backend.tags.records import NewTag, TagChanges, TagRecord
from backend.tags.repository import TagRepository
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
    a_tags: list[TagRecord]
    b_tags: list[TagRecord]

    @property
    def b_ids(self) -> set[Any]:
        return {todo.id for todo in self.b_todos}

    @property
    def a_tag_ids(self) -> set[Any]:
        return {tag.id for tag in self.a_tags}

    async def rows_of(self, user_id: str) -> list[asyncpg.Record]:
        """Every column of the user's todos, tags, links, idempotency keys and user row, in
        plain SQL."""
        rows: list[asyncpg.Record] = []
        for table in ("todo", "tag", "todo_tag", "idempotency_key"):
            rows += await self.connection.fetch(
                f"SELECT * FROM {table} WHERE user_id = $1 ORDER BY 1, 2",  # noqa: S608
                user_id,
            )
        rows += await self.connection.fetch('SELECT * FROM "user" WHERE id = $1', user_id)
        return rows


async def todos_for(
    connection: asyncpg.Connection, user: str, *todos: NewTodo, tags: tuple[str, ...] = ()
) -> list[Any]:
    """The user's `todos`, the first of them carrying the tags named `tags` (created)."""
    repository = TodoRepository(connection, user)
    tag_ids = await TagRepository(connection, user).resolve(tags)
    first, *rest = todos
    return [await repository.create(first, tag_ids)] + [
        await repository.create(todo) for todo in rest
    ]


@pytest.fixture
async def world(connection: asyncpg.Connection) -> World:
    """A: three todos (one completed, one overdue, one tagged "Shared" and "A only"), those two
    tags and an idempotency key; B: two todos (one completed, none overdue, one tagged
    "shared"), that tag. Every title contains "shared", so a search matches both, and both
    users have a tag named "shared" (in another case)."""
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
        tags=("Shared", "A only"),
    )
    b_todos = await todos_for(
        connection,
        B,
        NewTodo(title="B shared open", due_at=datetime.now(UTC) + timedelta(days=1)),
        NewTodo(title="B shared done", completed=True),
        tags=("shared",),
    )
    await IdempotencyStore(connection, A).claim("shared-key", "a-hash")
    await IdempotencyStore(connection, A).save("shared-key", "a-hash", b'{"a": 1}')
    a_tags = await TagRepository(connection, A).all()
    b_tags = await TagRepository(connection, B).all()
    return World(connection, a_todos, b_todos, a_tags, b_tags)


Case = Callable[[World], Awaitable[None]]
TODO_CASES: dict[str, Case] = {}
TAG_CASES: dict[str, Case] = {}
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
        for where in (
            TodoFilter(),
            TodoFilter(text="shared"),
            TodoFilter(completed=True),
            TodoFilter(tags=("shared",)),
            TodoFilter(tags=("A only",)),
        ):
            todos = await repository.page(where, order, 100, None)
            assert {todo.id for todo in todos} <= world.b_ids
            if where.completed is None and where.tags is None:
                assert {todo.id for todo in todos} == world.b_ids
            if where.tags is not None:
                # B's own "shared" tag, never A's "Shared" (nor A's "A only").
                expected = [world.b_todos[0].id] if where.tags == ("shared",) else []
                assert [todo.id for todo in todos] == expected
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


@scoping_case(TODO_CASES, "lock")
async def _lock(world: World) -> None:
    repository = todos_of_b(world)
    async with world.connection.transaction():
        for todo in world.a_todos:
            assert await repository.lock(todo.id) is None
        assert await repository.lock(world.b_todos[0].id) == world.b_todos[0]


@scoping_case(TODO_CASES, "spawn")
async def _spawn(world: World) -> None:
    repository = todos_of_b(world)
    a_tagged, b_tagged = world.a_todos[0], world.b_todos[0]
    # Even pointed at A's tagged todo, B's successor is B's and copies none of A's tags.
    stolen_id, own_id = uuid7(), uuid7()
    await repository.spawn(NewTodo(title="B successor", previous_id=a_tagged.id), stolen_id)
    await repository.spawn(NewTodo(title="B successor", previous_id=b_tagged.id), own_id)
    stolen, own = await repository.get(stolen_id), await repository.get(own_id)
    assert stolen is not None
    assert stolen.tags == ()
    assert own is not None
    assert own.tags == b_tagged.tags == ("shared",)
    owners = await world.connection.fetch(
        "SELECT DISTINCT user_id FROM todo_tag WHERE todo_id = ANY($1::uuid[])",
        [stolen_id, own_id],
    )
    assert [row["user_id"] for row in owners] == [B]
    for todo_id in (stolen_id, own_id):
        owner = await world.connection.fetchval("SELECT user_id FROM todo WHERE id = $1", todo_id)
        assert owner == B


def tags_of_b(world: World) -> TagRepository:
    return TagRepository(world.connection, B)


@scoping_case(TAG_CASES, "all")
async def _all_tags(world: World) -> None:
    assert await tags_of_b(world).all() == world.b_tags
    assert [(tag.name, tag.todo_count) for tag in world.b_tags] == [("shared", 1)]


@scoping_case(TAG_CASES, "get")
async def _get_tag(world: World) -> None:
    repository = tags_of_b(world)
    for tag in world.a_tags:
        assert await repository.get(tag.id) is None
    assert await repository.get(world.b_tags[0].id) == world.b_tags[0]


@scoping_case(TAG_CASES, "create")
async def _create_tag(world: World) -> None:
    repository = tags_of_b(world)
    async with world.connection.transaction():
        created = await repository.create(NewTag(name="A only", color="#abcdef"))
    assert created.id not in world.a_tag_ids
    owner = await world.connection.fetchval("SELECT user_id FROM tag WHERE id = $1", created.id)
    assert owner == B
    with pytest.raises(TagNameTaken):
        async with world.connection.transaction():  # B's own "shared", not A's "Shared"
            await repository.create(NewTag(name="SHARED"))


@scoping_case(TAG_CASES, "update")
async def _update_tag(world: World) -> None:
    repository = tags_of_b(world)
    for tag in world.a_tags:
        for changes in (
            TagChanges(name="stolen"),
            TagChanges(color="#000000"),
            TagChanges(name="stolen", color=None),
        ):
            assert await repository.update(tag.id, changes) is None
    # "A only" is A's name, not B's: B may rename its own tag to it.
    updated = await repository.update(world.b_tags[0].id, TagChanges(name="A only"))
    assert updated is not None
    assert updated.name == "A only"


@scoping_case(TAG_CASES, "delete")
async def _delete_tag(world: World) -> None:
    repository = tags_of_b(world)
    for tag in world.a_tags:
        assert await repository.delete(tag.id) is False
    assert await repository.delete(world.b_tags[0].id) is True


@scoping_case(TAG_CASES, "resolve")
async def _resolve(world: World) -> None:
    repository = tags_of_b(world)
    async with world.connection.transaction():
        resolved = await repository.resolve(("SHARED", "a ONLY", "Shared"))
    assert len(resolved) == 2
    assert resolved[0] == world.b_tags[0].id
    assert not set(resolved) & world.a_tag_ids
    owner = await world.connection.fetchval("SELECT user_id FROM tag WHERE id = $1", resolved[1])
    assert owner == B


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
        *(("TagRepository", method, case) for method, case in TAG_CASES.items()),
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
    [
        (TodoRepository, TODO_CASES),
        (TagRepository, TAG_CASES),
        (UserRepository, USER_CASES),
        (IdempotencyStore, KEY_CASES),
    ],
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


@pytest.mark.parametrize("cls", [TodoRepository, TagRepository, UserRepository, IdempotencyStore])
def test_a_repository_cannot_be_built_without_a_user_id(cls: type) -> None:
    parameters = list(inspect.signature(cls).parameters.values())
    assert [parameter.name for parameter in parameters] == ["connection", "user_id"]
    assert all(parameter.default is inspect.Parameter.empty for parameter in parameters)
