"""All SQL for todos, executed for one user. A repository is built for a user id and binds it
into every statement it runs (backend.todos.statements), so no method can reach another
user's rows. It speaks in records (backend.todos.records), never in API schemas."""

import re
from collections.abc import Iterator
from contextlib import contextmanager
from uuid import UUID

import asyncpg
from uuid_utils.compat import uuid7

from backend.db import Connection
from backend.tags.errors import TagDeletedMeanwhile
from backend.todos import statements
from backend.todos.errors import VIOLATED_CHECKS
from backend.todos.pagination import Position, SortOrder
from backend.todos.records import (
    ExpectedVersions,
    NewTodo,
    TodoChanges,
    TodoFilter,
    TodoRecord,
    TodoStats,
)
from backend.users.errors import UserGone

_LIKE_SPECIALS = re.compile(r"([\\%_])")


def contains_pattern(text: str) -> str:
    """An ILIKE pattern that matches `text` literally anywhere (`%`, `_`, `\\` escaped)."""
    return "%" + _LIKE_SPECIALS.sub(r"\\\1", text) + "%"


class TodoRepository:
    def __init__(self, connection: Connection, user_id: str) -> None:
        self._connection = connection
        self._user_id = user_id

    async def get(self, todo_id: UUID) -> TodoRecord | None:
        sql = statements.GET
        row = await self._connection.fetchrow(
            sql.sql, *sql.args(user_id=self._user_id, todo_id=todo_id)
        )
        return None if row is None else TodoRecord.from_row(row)

    async def exists(self, todo_id: UUID) -> bool:
        sql = statements.EXISTS
        found: bool = await self._connection.fetchval(
            sql.sql, *sql.args(user_id=self._user_id, todo_id=todo_id)
        )
        return found

    async def page(
        self, where: TodoFilter, order: SortOrder, limit: int, after: Position | None
    ) -> list[TodoRecord]:
        """Up to `limit` todos matching `where`, in `order`, after the position `after`."""
        values = where.values()
        if "text" in values:
            values["text"] = contains_pattern(values["text"])
        if "tags" in values:
            values["tags"] = list(values["tags"])
        position = None
        if after is not None:
            position = "null" if after.key is None else "key"
            values["after_key"] = after.key
            values["after_id"] = after.id
        sql = statements.page(frozenset(where.values()), order.name, position)
        rows = await self._connection.fetch(
            sql.sql, *sql.args(user_id=self._user_id, limit=limit, **values)
        )
        return [TodoRecord.from_row(row) for row in rows]

    async def lock(self, todo_id: UUID) -> TodoRecord | None:
        """The todo, locked until the transaction ends (must run in one)."""
        sql = statements.LOCK
        row = await self._connection.fetchrow(
            sql.sql, *sql.args(user_id=self._user_id, todo_id=todo_id)
        )
        return None if row is None else TodoRecord.from_row(row)

    async def create(
        self, new: NewTodo, tag_ids: list[UUID] | None = None, todo_id: UUID | None = None
    ) -> TodoRecord:
        """Insert `new`, linked to the tags `tag_ids` (the ids of the user's own tags)."""
        sql = statements.INSERT_TAGGED if tag_ids else statements.INSERT
        args = sql.args(**self._new_values(new, todo_id), tag_ids=tag_ids)
        with _translated_violations():
            row = await self._connection.fetchrow(sql.sql, *args)
        return TodoRecord.from_row(row)

    async def spawn(self, successor: NewTodo, todo_id: UUID) -> None:
        """Insert the successor of the recurring todo `successor.previous_id`, with its tags."""
        sql = statements.SPAWN
        with _translated_violations():
            await self._connection.execute(
                sql.sql, *sql.args(**self._new_values(successor, todo_id))
            )

    def _new_values(self, new: NewTodo, todo_id: UUID | None) -> dict[str, object]:
        return {
            "id": todo_id or uuid7(),
            "user_id": self._user_id,
            "title": new.title,
            "description": new.description,
            "completed": new.completed,
            "priority": new.priority,
            "due_at": new.due_at,
            "remind_at": new.remind_at,
            "recurrence": new.recurrence,
            "time_zone": new.time_zone,
            "previous_id": new.previous_id,
        }

    async def update(
        self,
        todo_id: UUID,
        changes: TodoChanges,
        expected: ExpectedVersions = None,
        *,
        tag_ids: list[UUID] | None = None,
        next_id: UUID | None = None,
        cannot_spawn: bool = False,
    ) -> TodoRecord | None:
        """Apply `changes` if the todo exists (at one of the `expected` versions); None if not.
        The version check and the write are one statement. `tag_ids` (if not None) become the
        todo's whole tag set; `next_id` records the successor it spawned; with `cannot_spawn`,
        only a todo whose completion cannot spawn a successor is written."""
        values = changes.values()
        if next_id is not None:
            values["next_id"] = next_id
        guarded = bool(expected)
        tagged = tag_ids is not None
        sql = statements.update_one(
            frozenset(values), guarded=guarded, tagged=tagged, cannot_spawn=cannot_spawn
        )
        if guarded:
            values["versions"] = list(expected or ())
        if tagged:
            values["tag_ids"] = tag_ids
        with _translated_violations():
            row = await self._connection.fetchrow(
                sql.sql, *sql.args(user_id=self._user_id, todo_id=todo_id, **values)
            )
        return None if row is None else TodoRecord.from_row(row)

    async def delete(self, todo_id: UUID, expected: ExpectedVersions = None) -> bool:
        """Delete the todo if it exists (at one of the `expected` versions)."""
        guarded = bool(expected)
        sql = statements.delete_one(guarded=guarded)
        values = {"versions": list(expected or ())} if guarded else {}
        deleted = await self._connection.fetchval(
            sql.sql, *sql.args(user_id=self._user_id, todo_id=todo_id, **values)
        )
        return deleted is not None

    async def delete_completed(self) -> int:
        sql = statements.CLEAR_COMPLETED
        deleted: int = await self._connection.fetchval(sql.sql, *sql.args(user_id=self._user_id))
        return deleted

    async def stats(self) -> TodoStats:
        sql = statements.STATS
        row = await self._connection.fetchrow(sql.sql, *sql.args(user_id=self._user_id))
        assert row is not None  # an aggregate always returns its row
        total, completed, overdue = row
        return TodoStats(
            total=total, completed=completed, active=total - completed, overdue=overdue
        )


@contextmanager
def _translated_violations() -> Iterator[None]:
    """Constraint violations valid-looking input can cause, as the problems they mean."""
    try:
        yield
    except asyncpg.ForeignKeyViolationError as exc:
        if exc.constraint_name == "todo_tag_tag_fkey":
            raise TagDeletedMeanwhile() from exc
        raise UserGone() from exc  # the one other: the user was deleted meanwhile
    except asyncpg.CheckViolationError as exc:
        problem = VIOLATED_CHECKS.get(exc.constraint_name or "")
        if problem is None:
            raise
        raise problem() from exc
