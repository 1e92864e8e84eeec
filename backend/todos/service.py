"""Todo use cases, for one user. The service decides each unit of work: a single statement
runs on an autocommit connection (atomic by itself, no BEGIN/COMMIT round trips); a use case
of several statements — an idempotent create, setting tags (which may create them), the
completion of a recurring todo (which spawns its successor) — opens the one transaction they
must share.

After a write commits, the service tells `announce` (backend.sync.hub), which wakes the user's
live event streams; the change log itself was written by the statements.
"""

from typing import NoReturn
from uuid import UUID

from msgspec import UNSET, Struct
from uuid_utils.compat import uuid7

from backend.db import Database
from backend.idempotency import IdempotencyStore
from backend.sync.announce import Announce, unannounced
from backend.tags.repository import TagRepository
from backend.todos import recurrence
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
from backend.users.service import check_user_exists


class IdempotencyKey(Struct, frozen=True):
    """An Idempotency-Key and the fingerprint of the request it came with."""

    key: str
    request_hash: str


class Created(Struct, frozen=True):
    todo: TodoRecord
    replayed: bool = False  # the stored outcome of an earlier request with the same key


class _Unwritten(Exception):
    """Raised inside a transaction that wrote nothing it meant to, so that it rolls back."""

    def __init__(self, stale: bool) -> None:
        self.stale = stale


class TodoService:
    def __init__(self, database: Database, user_id: str, announce: Announce = unannounced) -> None:
        self._database = database
        self._user_id = user_id
        self._announce = announce

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
            await check_user_exists(self._database, self._user_id)
            raise TodoNotFound()
        return todo

    async def create(self, new: NewTodo, idempotency: IdempotencyKey | None = None) -> Created:
        if idempotency is None and not new.tags:
            async with self._database.connection() as connection:
                todo = await TodoRepository(connection, self._user_id).create(new)
            self._announce(self._user_id)
            return Created(todo)
        # The todo, its tags and the stored outcome commit together, under the key's lock
        # (see backend.idempotency), before the response is sent.
        async with self._database.transaction() as connection:
            store = IdempotencyStore(connection, self._user_id)
            if idempotency is not None:
                stored = await store.claim(idempotency.key, idempotency.request_hash)
                if stored is not None:
                    return Created(TodoRecord.from_json(stored), replayed=True)
            tag_ids = await TagRepository(connection, self._user_id).resolve(new.tags)
            todo = await TodoRepository(connection, self._user_id).create(new, tag_ids)
            if idempotency is not None:
                await store.save(idempotency.key, idempotency.request_hash, todo.to_json())
        self._announce(self._user_id)
        return Created(todo)

    async def update(
        self, todo_id: UUID, changes: TodoChanges, expected: ExpectedVersions = None
    ) -> TodoRecord:
        if changes.tags is not UNSET or (changes.completes and changes.recurrence is not UNSET):
            return await self._update_locked(todo_id, changes, expected)
        async with self._database.connection() as connection:
            todos = TodoRepository(connection, self._user_id)
            if not changes.values():  # nothing to write: answer as a write would
                todo = await todos.get(todo_id)
                if todo is not None and (not expected or todo.version in expected):
                    return todo
                stale = todo is not None
            else:
                # One statement, unless it is the completion of a recurring todo: then the
                # statement writes nothing and the locked path below takes over.
                todo = await todos.update(
                    todo_id, changes, expected, cannot_spawn=changes.completes
                )
                if todo is not None:
                    self._announce(self._user_id)
                    return todo
                stale = not changes.completes and await todos.exists(todo_id)
        if changes.completes:
            return await self._update_locked(todo_id, changes, expected)
        await self._not_written(stale)

    async def _update_locked(
        self, todo_id: UUID, changes: TodoChanges, expected: ExpectedVersions
    ) -> TodoRecord:
        """An update that sets tags or may spawn a successor: several statements, one
        transaction, the todo locked first (so concurrent completions spawn one successor)."""
        try:
            async with self._database.transaction() as connection:
                tag_ids = None
                if changes.tags is not UNSET:
                    # Before the todo's lock: creating tags takes the user's tag lock, which
                    # every transaction takes before the change counter (backend.sync.stamping).
                    tags = TagRepository(connection, self._user_id)
                    tag_ids = await tags.resolve(changes.tags)
                todos = TodoRepository(connection, self._user_id)
                current = await todos.lock(todo_id)
                if current is None or (expected and current.version not in expected):
                    raise _Unwritten(stale=current is not None)  # and drop the tags it created
                successor = _successor(current, changes)
                successor_id = None if successor is None else uuid7()
                todo = await todos.update(todo_id, changes, tag_ids=tag_ids, next_id=successor_id)
                assert todo is not None  # locked: still there
                if successor is not None and successor_id is not None:
                    await todos.spawn(successor, successor_id)
        except _Unwritten as unwritten:
            await self._not_written(unwritten.stale)
        self._announce(self._user_id)
        return todo

    async def delete(self, todo_id: UUID, expected: ExpectedVersions = None) -> None:
        async with self._database.connection() as connection:
            todos = TodoRepository(connection, self._user_id)
            if await todos.delete(todo_id, expected):
                self._announce(self._user_id)
                return
            stale = await todos.exists(todo_id)
        await self._not_written(stale)

    async def clear_completed(self) -> int:
        async with self._database.connection() as connection:
            deleted = await TodoRepository(connection, self._user_id).delete_completed()
        if deleted:
            self._announce(self._user_id)
        return deleted

    async def stats(self) -> TodoStats:
        async with self._database.connection() as connection:
            return await TodoRepository(connection, self._user_id).stats()

    async def _not_written(self, stale: bool) -> NoReturn:
        """A write matched nothing: the todo is there at another version (If-Match), or it
        is not there at all."""
        if stale:
            raise VersionMismatch()
        await check_user_exists(self._database, self._user_id)
        raise TodoNotFound()


# What a successor takes from its predecessor (as the completing change leaves it), beside
# its tags, which the database copies.
_INHERITED = ("title", "description", "priority", "due_at", "remind_at", "recurrence", "time_zone")


def _successor(current: TodoRecord, changes: TodoChanges) -> NewTodo | None:
    """The successor that applying `changes` to `current` spawns: only the first completion
    of a recurring todo spawns one, and only while its series lasts."""
    if not changes.completes or current.completed or current.next_id is not None:
        return None
    after = {name: getattr(current, name) for name in _INHERITED} | changes.values()
    rule, due_at, time_zone = after["recurrence"], after["due_at"], after["time_zone"]
    if rule is None or due_at is None:  # no series (or an invalid change: the write refuses it)
        return None
    following = recurrence.successor(rule, due_at, time_zone)
    if following is None:
        return None
    remind_at = after["remind_at"]
    return NewTodo(
        title=after["title"],
        description=after["description"],
        priority=after["priority"],
        due_at=following.due_at,
        # The reminder keeps its distance before the due date.
        remind_at=None if remind_at is None else following.due_at - (due_at - remind_at),
        recurrence=following.recurrence,
        time_zone=time_zone,
        previous_id=current.id,
    )
