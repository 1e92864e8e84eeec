"""The `todo` table. API schemas live in `schemas.py`: a table model never validates input."""

from datetime import datetime
from enum import StrEnum
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Enum,
    ForeignKey,
    Index,
    Integer,
    Table,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import UUID as PgUUID
from sqlmodel import Field, SQLModel
from uuid_utils.compat import uuid7

from backend.base import timestamp_column

TITLE_MAX_LENGTH = 255
DESCRIPTION_MAX_LENGTH = 10_000


class Priority(StrEnum):
    # Declaration order is the PostgreSQL enum's sort order: low < medium < high.
    low = "low"
    medium = "medium"
    high = "high"


PRIORITY_TYPE = Enum(
    Priority, name="todo_priority", values_callable=lambda members: [m.value for m in members]
)


class Todo(SQLModel, table=True):
    __tablename__ = "todo"
    __table_args__ = (
        CheckConstraint(
            f"char_length(title) BETWEEN 1 AND {TITLE_MAX_LENGTH}", name="title_length"
        ),
        CheckConstraint(
            f"char_length(description) <= {DESCRIPTION_MAX_LENGTH}", name="description_length"
        ),
        CheckConstraint("completed = (completed_at IS NOT NULL)", name="completed_at"),
        CheckConstraint("version >= 1", name="version_positive"),
        CheckConstraint("recurrence IS NULL OR due_at IS NOT NULL", name="recurrence_due"),
        CheckConstraint("remind_at <= due_at", name="remind_before_due"),
        # What todo_tag's foreign key points at (id alone is the primary key).
        UniqueConstraint("user_id", "id"),
        # A todo has at most one successor, whatever the code does.
        Index(
            "ix_todo_previous",
            "previous_id",
            unique=True,
            postgresql_where=text("previous_id IS NOT NULL"),
        ),
        # One index per sort order of GET /todos; each ends in id, the tie-breaker.
        Index("ix_todo_user_created", "user_id", text("created_at DESC"), text("id DESC")),
        Index("ix_todo_user_due", "user_id", "due_at", "id"),
        Index("ix_todo_user_priority", "user_id", "priority", "id"),
        Index("ix_todo_user_title", "user_id", func.lower(text("title")), "id"),
        Index("ix_todo_user_remind", "user_id", "remind_at", "id"),
        # The change feed (GET /todos/changes, /events): a user's todos in change order.
        Index("ix_todo_user_change", "user_id", "change_seq", "id"),
        # Serves `q` (ILIKE on title and description) through pg_trgm, within one user's todos
        # (btree_gin indexes user_id in the same GIN index): a search costs what the user's
        # matches cost, not what every user's matches cost.
        Index(
            "ix_todo_user_search",
            "user_id",
            "title",
            "description",
            postgresql_using="gin",
            postgresql_ops={"title": "gin_trgm_ops", "description": "gin_trgm_ops"},
        ),
    )

    id: UUID = Field(
        default_factory=uuid7, sa_column=Column(PgUUID(as_uuid=True), primary_key=True)
    )
    user_id: str = Field(
        sa_column=Column(Text, ForeignKey("user.id", ondelete="CASCADE"), nullable=False)
    )
    title: str = Field(sa_column=Column(Text, nullable=False))
    description: str | None = Field(default=None, sa_column=Column(Text))
    completed: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=false())
    )
    completed_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))
    priority: Priority = Field(
        default=Priority.medium,
        sa_column=Column(PRIORITY_TYPE, nullable=False, server_default=Priority.medium.value),
    )
    due_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))
    created_at: datetime | None = Field(default=None, sa_column=timestamp_column())
    updated_at: datetime | None = Field(default=None, sa_column=timestamp_column())
    version: int = Field(
        default=1, sa_column=Column(Integer, nullable=False, server_default=text("1"))
    )
    # An RRULE value (backend.todos.recurrence), expanded in `time_zone`.
    recurrence: str | None = Field(default=None, sa_column=Column(Text))
    time_zone: str = Field(
        default="UTC", sa_column=Column(Text, nullable=False, server_default="UTC")
    )
    remind_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))
    # The chain of a recurring series. Plain ids, not foreign keys: `next_id` records, for
    # ever, that a successor was spawned, even after that successor is deleted.
    next_id: UUID | None = Field(default=None, sa_column=Column(PgUUID(as_uuid=True)))
    previous_id: UUID | None = Field(default=None, sa_column=Column(PgUUID(as_uuid=True)))
    # The user's change number of the last write to this todo (backend.sync.models). No
    # server default: a statement that forgot to stamp a todo fails instead of hiding it from
    # the feed. (0, "before any change", is only for rows built as models: tests, scripts.)
    change_seq: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))


# The table itself, for SQLAlchemy Core statements (the hot paths): comparisons on Core
# columns cost a fraction of those on the ORM attributes.
TODOS: Table = Todo.__table__  # type: ignore[attr-defined]
