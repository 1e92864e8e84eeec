"""change log: per-user change counter, todo change numbers, tombstones, fired reminders

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04

`todo.change_seq` is added with a constant default (no table rewrite) that stamps every
existing todo 0 — "before any numbered change", which a sync from the beginning includes —
and the default is then dropped, so that a write that forgets to stamp fails.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _user_id() -> sa.Column[str]:
    return sa.Column("user_id", sa.Text(), nullable=False)


def _timestamp(name: str, *, default: bool = True) -> sa.Column[object]:
    return sa.Column(
        name,
        sa.DateTime(timezone=True),
        server_default=sa.text("now()") if default else None,
        nullable=False,
    )


def _user_fkey(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["user_id"], ["user.id"], name=op.f(f"{table}_user_id_fkey"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.add_column(
        "todo", sa.Column("change_seq", sa.BigInteger(), server_default="0", nullable=False)
    )
    op.alter_column("todo", "change_seq", server_default=None)
    op.create_index("ix_todo_user_change", "todo", ["user_id", "change_seq", "id"])

    op.create_table(
        "change_counter",
        _user_id(),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("pruned_through", sa.BigInteger(), server_default="0", nullable=False),
        _user_fkey("change_counter"),
        sa.PrimaryKeyConstraint("user_id", name=op.f("change_counter_pkey")),
    )
    op.create_table(
        "todo_tombstone",
        _user_id(),
        sa.Column("change_seq", sa.BigInteger(), nullable=False),
        sa.Column("todo_id", sa.Uuid(), nullable=False),
        _timestamp("deleted_at"),
        _user_fkey("todo_tombstone"),
        sa.PrimaryKeyConstraint(
            "user_id", "change_seq", "todo_id", name=op.f("todo_tombstone_pkey")
        ),
    )
    op.create_index("ix_todo_tombstone_deleted_at", "todo_tombstone", ["deleted_at"])
    op.create_table(
        "reminder",
        _user_id(),
        sa.Column("todo_id", sa.Uuid(), nullable=False),
        _timestamp("remind_at", default=False),
        sa.Column("change_seq", sa.BigInteger(), nullable=False),
        _timestamp("fired_at"),
        _user_fkey("reminder"),
        sa.PrimaryKeyConstraint("user_id", "todo_id", "remind_at", name=op.f("reminder_pkey")),
    )
    op.create_index("ix_reminder_user_change", "reminder", ["user_id", "change_seq", "todo_id"])
    op.create_index("ix_reminder_fired_at", "reminder", ["fired_at"])


def downgrade() -> None:
    op.drop_table("reminder")
    op.drop_table("todo_tombstone")
    op.drop_table("change_counter")
    op.drop_index("ix_todo_user_change", table_name="todo")
    op.drop_column("todo", "change_seq")
