"""The `tag` table and `todo_tag`, the link between todos and tags.

Ownership is enforced by the database, not only by the code: a link carries `user_id`, and
both of its foreign keys go through `(user_id, id)`, so no statement — however buggy — can
attach one user's tag to another user's todo.
"""

from datetime import datetime
from uuid import UUID

from sqlalchemy import (
    CheckConstraint,
    Column,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import UUID as PgUUID
from sqlmodel import Field, SQLModel
from uuid_utils.compat import uuid7

from backend.base import timestamp_column

NAME_MAX_LENGTH = 50
MAX_TAGS_PER_USER = 1_000
COLOR_PATTERN = r"^#[0-9a-f]{6}$"  # stored lowercased


class Tag(SQLModel, table=True):
    __tablename__ = "tag"
    __table_args__ = (
        CheckConstraint(f"char_length(name) BETWEEN 1 AND {NAME_MAX_LENGTH}", name="name_length"),
        CheckConstraint(f"color ~ '{COLOR_PATTERN}'", name="color_format"),
        # What todo_tag's foreign key points at (id alone is the primary key).
        UniqueConstraint("user_id", "id"),
        # Names are unique per user case-insensitively, as PostgreSQL lowers them.
        Index("ix_tag_user_name", "user_id", func.lower(text("name")), unique=True),
    )

    id: UUID = Field(
        default_factory=uuid7, sa_column=Column(PgUUID(as_uuid=True), primary_key=True)
    )
    user_id: str = Field(
        sa_column=Column(Text, ForeignKey("user.id", ondelete="CASCADE"), nullable=False)
    )
    name: str = Field(sa_column=Column(Text, nullable=False))
    color: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime | None = Field(default=None, sa_column=timestamp_column())
    updated_at: datetime | None = Field(default=None, sa_column=timestamp_column())


class TodoTag(SQLModel, table=True):
    __tablename__ = "todo_tag"
    __table_args__ = (
        PrimaryKeyConstraint("todo_id", "tag_id"),
        ForeignKeyConstraint(
            ["user_id", "todo_id"],
            ["todo.user_id", "todo.id"],
            name="todo_tag_todo_fkey",
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["user_id", "tag_id"],
            ["tag.user_id", "tag.id"],
            name="todo_tag_tag_fkey",
            ondelete="CASCADE",
        ),
        # Serves the `tag=` filter, `todo_count` and the cascade from a deleted tag.
        Index("ix_todo_tag_tag", "tag_id", "todo_id"),
    )

    user_id: str = Field(sa_column=Column(Text, nullable=False))
    todo_id: UUID = Field(sa_column=Column(PgUUID(as_uuid=True), nullable=False))
    tag_id: UUID = Field(sa_column=Column(PgUUID(as_uuid=True), nullable=False))


TAGS: Table = Tag.__table__  # type: ignore[attr-defined]
TODO_TAGS: Table = TodoTag.__table__  # type: ignore[attr-defined]
