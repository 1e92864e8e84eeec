"""What the todo layers pass each other: typed, immutable records.

The repository takes `NewTodo`, `TodoChanges` and `TodoFilter` and returns `TodoRecord` and
`TodoStats`; the service hands records to the router, which turns them into HTTP. None of
these is an API schema, and none can name a column a client may not set.
"""

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Self
from uuid import UUID

from pydantic import TypeAdapter

from backend.todos.models import Priority


@dataclass(frozen=True, slots=True)
class TodoRecord:
    """One todo as the API shows it (every column but `user_id`)."""

    id: UUID
    title: str
    description: str | None
    completed: bool
    completed_at: datetime | None
    priority: Priority
    due_at: datetime | None
    created_at: datetime
    updated_at: datetime
    version: int

    @classmethod
    def from_row(cls, row: Any) -> Self:
        """From a database row whose columns are `COLUMNS`, in order."""
        (id_, title, description, completed, completed_at, priority, due_at, created, updated,
         version) = row  # fmt: skip
        return cls(
            id_, title, description, completed, completed_at, Priority(priority), due_at,
            created, updated, version,
        )  # fmt: skip


COLUMNS = tuple(field.name for field in fields(TodoRecord))
_TODO_JSON = TypeAdapter(TodoRecord)


def todo_to_json(todo: TodoRecord) -> bytes:
    return _TODO_JSON.dump_json(todo)


def todo_from_json(data: str | bytes) -> TodoRecord:
    return _TODO_JSON.validate_json(data)


@dataclass(frozen=True, slots=True)
class NewTodo:
    title: str
    description: str | None = None
    completed: bool = False
    priority: Priority = Priority.medium
    due_at: datetime | None = None


class _Unset:
    """The marker of a field a change leaves as it is (None means "clear it")."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


@dataclass(frozen=True, slots=True)
class TodoChanges:
    """A partial update: exactly the fields a client may change, each UNSET by default."""

    title: str = UNSET
    description: str | None = UNSET
    completed: bool = UNSET
    priority: Priority = UNSET
    due_at: datetime | None = UNSET

    def values(self) -> dict[str, Any]:
        """The fields that are set, by column name."""
        return {
            field.name: value
            for field in fields(self)
            if (value := getattr(self, field.name)) is not UNSET
        }


@dataclass(frozen=True, slots=True)
class TodoFilter:
    """Conditions of a listing; None means "any"."""

    completed: bool | None = None
    priority: Priority | None = None
    text: str | None = None  # case-insensitive, literal, in title or description
    due_after: datetime | None = None  # inclusive
    due_before: datetime | None = None  # exclusive

    def values(self) -> dict[str, Any]:
        """The conditions that are set, by name."""
        return {
            field.name: value
            for field in fields(self)
            if (value := getattr(self, field.name)) is not None
        }


# What If-Match allows: None, no precondition; else the versions it names (empty means "*").
ExpectedVersions = frozenset[int] | None


@dataclass(frozen=True, slots=True)
class TodoStats:
    total: int
    completed: int
    active: int
    overdue: int


@dataclass(frozen=True, slots=True)
class TodoPage:
    items: list[TodoRecord]
    next_cursor: str | None
