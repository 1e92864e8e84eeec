"""All SQL for todos. A repository is built for one user; every statement it issues carries
`user_id = :me`, so no method can reach another user's rows."""

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import (
    ColumnElement,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from uuid_utils.compat import uuid7

from backend.errors import NotFound, PreconditionFailed
from backend.todos.models import TODOS, TodoRow
from backend.todos.pagination import Position, SortOrder
from backend.todos.schemas import TodoCreate, TodoListQuery, TodoStats
from backend.users.repository import UserGone


class TodoNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("No todo with this id.")


class VersionMismatch(PreconditionFailed):
    def __init__(self) -> None:
        super().__init__("The todo has changed since the ETag in If-Match was issued.")


# None: no precondition; otherwise the versions If-Match allows (empty means "*").
ExpectedVersions = frozenset[int] | None

# Hot paths use SQLAlchemy Core on the SQLModel table: rows, not ORM objects, which spares
# the identity map and attribute instrumentation on every request. A row reads like a Todo
# (`row.title`), which is all TodoRead.model_validate needs.
C = TODOS.c

# The statement of GET /todos/{id}, built once: only its parameters change per request.
_GET = select(TODOS).where(C.user_id == bindparam("user_id"), C.id == bindparam("todo_id"))


class TodoRepository:
    def __init__(self, connection: AsyncConnection, user_id: str) -> None:
        self._connection = connection
        self._user_id = user_id

    def _mine(self, *conditions: ColumnElement[bool]) -> ColumnElement[bool]:
        return and_(C.user_id == self._user_id, *conditions)

    def _one(self, todo_id: UUID, expected: ExpectedVersions = None) -> ColumnElement[bool]:
        conditions = [C.id == todo_id]
        if expected:
            conditions.append(C.version.in_(expected))
        return self._mine(*conditions)

    async def get(self, todo_id: UUID) -> TodoRow:
        parameters = {"user_id": self._user_id, "todo_id": todo_id}
        todo = (await self._connection.execute(_GET, parameters)).first()
        if todo is None:
            raise TodoNotFound()
        return todo

    async def page(
        self, query: TodoListQuery, order: SortOrder, after: Position | None
    ) -> Sequence[TodoRow]:
        """One page plus one row (so the caller knows whether another page follows)."""
        conditions = [*self._filters(query)]
        if after is not None:
            conditions.append(order.after(after))
        statement = (
            select(TODOS)
            .where(self._mine(*conditions))
            .order_by(*order.order_by())
            .limit(query.limit + 1)
        )
        return (await self._connection.execute(statement)).all()

    @staticmethod
    def _filters(query: TodoListQuery) -> list[ColumnElement[bool]]:
        filters: list[ColumnElement[bool]] = []
        if query.completed is not None:
            filters.append(C.completed == query.completed)
        if query.priority is not None:
            filters.append(C.priority == query.priority)
        if query.q is not None:
            # autoescape: %, _ and \ in the search text match themselves.
            filters.append(
                C.title.icontains(query.q, autoescape=True)
                | C.description.icontains(query.q, autoescape=True)
            )
        if query.due_after is not None:
            filters.append(C.due_at >= query.due_after)
        if query.due_before is not None:
            filters.append(C.due_at < query.due_before)
        return filters

    async def create(self, data: TodoCreate) -> TodoRow:
        values = data.model_dump()
        values["completed_at"] = func.now() if data.completed else None
        statement = (
            insert(TODOS).values(id=uuid7(), user_id=self._user_id, **values).returning(TODOS)
        )
        try:
            created: TodoRow = (await self._connection.execute(statement)).one()
        except IntegrityError as exc:  # the only constraint validated input can hit: user_id
            raise UserGone() from exc
        return created

    async def update(
        self, todo_id: UUID, changes: dict[str, Any], expected: ExpectedVersions = None
    ) -> TodoRow:
        """Apply `changes` in one statement that also checks the version (If-Match)."""
        if not changes:
            todo = await self.get(todo_id)
            if expected and todo.version not in expected:
                raise VersionMismatch()
            return todo
        values: dict[str, Any] = {**changes, "version": C.version + 1}
        values["updated_at"] = func.now()
        if "completed" in changes:
            # Completing keeps the first completion time; reopening clears it.
            values["completed_at"] = (
                case((C.completed, C.completed_at), else_=func.now())
                if changes["completed"]
                else None
            )
        statement = (
            update(TODOS).where(self._one(todo_id, expected)).values(values).returning(TODOS)
        )
        updated: TodoRow | None = (await self._connection.execute(statement)).one_or_none()
        if updated is None:
            raise await self._why_missing(todo_id)
        return updated

    async def delete(self, todo_id: UUID, expected: ExpectedVersions = None) -> None:
        statement = delete(TODOS).where(self._one(todo_id, expected)).returning(TODOS.c.id)
        if await self._connection.scalar(statement) is None:
            raise await self._why_missing(todo_id)

    async def _why_missing(self, todo_id: UUID) -> TodoNotFound | VersionMismatch:
        """After a guarded write matched nothing: was it the id or the version?"""
        exists = select(C.id).where(self._one(todo_id))
        found = await self._connection.scalar(exists)
        return VersionMismatch() if found is not None else TodoNotFound()

    async def delete_completed(self) -> int:
        statement = delete(TODOS).where(self._mine(C.completed.is_(True)))
        result = await self._connection.execute(statement)
        return int(result.rowcount)

    async def stats(self) -> TodoStats:
        completed = C.completed
        overdue = and_(~completed, C.due_at < func.now())
        statement = select(
            func.count(),
            func.count().filter(completed),
            func.count().filter(overdue),
        ).where(self._mine())
        total, done, late = (await self._connection.execute(statement)).one()
        return TodoStats(total=total, completed=done, active=total - done, overdue=late)
