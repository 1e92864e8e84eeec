"""The change log's tables: each user's change counter, the tombstones deleted todos leave,
and the reminders that have fired.

Every write to a user's todos advances the user's counter (`change_counter.last_seq`) in the
same statement and stamps what it wrote with the new value: `todo.change_seq` for the todos
it created or changed, a `todo_tombstone` row for each it deleted, a `reminder` row for each
reminder it fired. Advancing the counter locks its row until the transaction ends, so one
user's writes commit in the order of their numbers: a reader that sees number n committed
sees every number below it committed too, and "everything after n" can never miss a change
that commits late. See backend.sync.statements.
"""

from datetime import datetime
from uuid import UUID

from sqlalchemy import BigInteger, Column, ForeignKey, Index, PrimaryKeyConstraint, Table, Text
from sqlalchemy.dialects.postgresql import UUID as PgUUID
from sqlmodel import Field, SQLModel

from backend.base import timestamp_column


class ChangeCounter(SQLModel, table=True):
    """One row per user who has written: the last change number handed out, and how far the
    log has been pruned (older positions can no longer be answered exactly: 410)."""

    __tablename__ = "change_counter"

    user_id: str = Field(
        sa_column=Column(Text, ForeignKey("user.id", ondelete="CASCADE"), primary_key=True)
    )
    last_seq: int = Field(sa_column=Column(BigInteger, nullable=False))
    pruned_through: int = Field(
        default=0, sa_column=Column(BigInteger, nullable=False, server_default="0")
    )


class TodoTombstone(SQLModel, table=True):
    """A deleted todo, so that a client that was away learns of the deletion."""

    __tablename__ = "todo_tombstone"
    __table_args__ = (
        PrimaryKeyConstraint("user_id", "change_seq", "todo_id"),
        Index("ix_todo_tombstone_deleted_at", "deleted_at"),  # pruning
    )

    user_id: str = Field(
        sa_column=Column(Text, ForeignKey("user.id", ondelete="CASCADE"), nullable=False)
    )
    change_seq: int = Field(sa_column=Column(BigInteger, nullable=False))
    todo_id: UUID = Field(sa_column=Column(PgUUID(as_uuid=True), nullable=False))
    deleted_at: datetime | None = Field(default=None, sa_column=timestamp_column())


class Reminder(SQLModel, table=True):
    """A reminder that has fired: claimed once per (todo, remind_at), whichever instance
    claims it first, and delivered from the log like any change."""

    __tablename__ = "reminder"
    __table_args__ = (
        PrimaryKeyConstraint("user_id", "todo_id", "remind_at"),
        Index("ix_reminder_user_change", "user_id", "change_seq", "todo_id"),
        Index("ix_reminder_fired_at", "fired_at"),  # pruning
    )

    user_id: str = Field(
        sa_column=Column(Text, ForeignKey("user.id", ondelete="CASCADE"), nullable=False)
    )
    # No foreign key to the todo: the log keeps what happened, even after a delete.
    todo_id: UUID = Field(sa_column=Column(PgUUID(as_uuid=True), nullable=False))
    remind_at: datetime = Field(sa_column=timestamp_column(server_default=None))
    change_seq: int = Field(sa_column=Column(BigInteger, nullable=False))
    fired_at: datetime | None = Field(default=None, sa_column=timestamp_column())


CHANGE_COUNTERS: Table = ChangeCounter.__table__  # type: ignore[attr-defined]
TOMBSTONES: Table = TodoTombstone.__table__  # type: ignore[attr-defined]
REMINDERS: Table = Reminder.__table__  # type: ignore[attr-defined]
