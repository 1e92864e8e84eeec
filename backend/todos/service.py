"""Todo use cases, for one user. The service decides each unit of work: a single statement
runs on an autocommit connection (atomic by itself, no BEGIN/COMMIT round trips); an
idempotent create opens the one transaction its statements must share."""

from typing import NoReturn
from uuid import UUID

from msgspec import Struct

from backend.db import Database
from backend.idempotency import IdempotencyStore
from backend.todos.errors import TodoNotFound, VersionMismatch
from backend.todos.pagination import SortOrder, decode_cursor, encode_cursor
from backend.todos.records import (
    ExpectedVersions,
    NewTodo,
    TodoChanges,
    TodoFilter,
    TodoPage,
    TodoRecord,
    TodoStats,
)
from backend.todos.repository import TodoRepository
from backend.users.errors import UserGone
from backend.users.repository import UserRepository


class IdempotencyKey(Struct, frozen=True):
    """An Idempotency-Key and the fingerprint of the request it came with."""

    key: str
    request_hash: str


class Created(Struct, frozen=True):
    todo: TodoRecord
    replayed: bool = False  # the stored outcome of an earlier request with the same key


class TodoService:
    def __init__(self, database: Database, user_id: str) -> None:
        self._database = database
        self._user_id = user_id

    async def list(
        self, where: TodoFilter, order: SortOrder, limit: int, cursor: str | None = None
    ) -> TodoPage:
        after = decode_cursor(order, cursor) if cursor is not None else None
        async with self._database.connection() as connection:
            # One row more than asked for tells whether another page follows.
            rows = await TodoRepository(connection, self._user_id).page(
                where, order, limit + 1, after
            )
        items = rows[:limit]
        more = len(rows) > limit
        return TodoPage(items=items, next_cursor=encode_cursor(order, items[-1]) if more else None)

    async def get(self, todo_id: UUID) -> TodoRecord:
        async with self._database.connection() as connection:
            todo = await TodoRepository(connection, self._user_id).get(todo_id)
        if todo is None:
            await self._check_user_exists()
            raise TodoNotFound()
        return todo

    async def create(self, new: NewTodo, idempotency: IdempotencyKey | None = None) -> Created:
        if idempotency is None:
            async with self._database.connection() as connection:
                return Created(await TodoRepository(connection, self._user_id).create(new))
        # The todo and the stored outcome commit together, under the key's lock (see
        # backend.idempotency), before the response is sent.
        async with self._database.transaction() as connection:
            store = IdempotencyStore(connection, self._user_id)
            stored = await store.claim(idempotency.key, idempotency.request_hash)
            if stored is not None:
                return Created(TodoRecord.from_json(stored), replayed=True)
            todo = await TodoRepository(connection, self._user_id).create(new)
            await store.save(idempotency.key, idempotency.request_hash, todo.to_json())
            return Created(todo)

    async def update(
        self, todo_id: UUID, changes: TodoChanges, expected: ExpectedVersions = None
    ) -> TodoRecord:
        async with self._database.connection() as connection:
            todos = TodoRepository(connection, self._user_id)
            if changes.values():
                todo = await todos.update(todo_id, changes, expected)
                stale = todo is None and await todos.exists(todo_id)
            else:  # nothing to write: answer as a write would
                todo = await todos.get(todo_id)
                stale = todo is not None and bool(expected) and todo.version not in (expected or ())
        if todo is None or stale:
            await self._not_written(stale)
        return todo

    async def delete(self, todo_id: UUID, expected: ExpectedVersions = None) -> None:
        async with self._database.connection() as connection:
            todos = TodoRepository(connection, self._user_id)
            if await todos.delete(todo_id, expected):
                return
            stale = await todos.exists(todo_id)
        await self._not_written(stale)

    async def clear_completed(self) -> int:
        async with self._database.connection() as connection:
            return await TodoRepository(connection, self._user_id).delete_completed()

    async def stats(self) -> TodoStats:
        async with self._database.connection() as connection:
            return await TodoRepository(connection, self._user_id).stats()

    async def _not_written(self, stale: bool) -> NoReturn:
        """A write matched nothing: the todo is there at another version (If-Match), or it
        is not there at all."""
        if stale:
            raise VersionMismatch()
        await self._check_user_exists()
        raise TodoNotFound()

    async def _check_user_exists(self) -> None:
        """A todo id not found: is it because the user itself was deleted (by Better Auth, on
        a shared database) since this process provisioned them? Then the answer is 401, and
        the process refuses the user's tokens from now on. Costs a statement only on 404s."""
        async with self._database.connection() as connection:
            if not await UserRepository(connection, self._user_id).exists():
                raise UserGone()
