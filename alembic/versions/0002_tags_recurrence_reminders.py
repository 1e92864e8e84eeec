"""tags, recurring todos and reminders

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01

Every new `todo` column is nullable or has a constant default, so adding it rewrites no rows.
`todo_tag` references both sides through `(user_id, id)`: the database itself refuses a link
between one user's todo and another user's tag.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # `q` searches one user's todos: with btree_gin (a trusted extension, like pg_trgm) the
    # trigram index covers user_id too, so a search no longer reads every user's matches.
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
    op.create_index(
        "ix_todo_user_search",
        "todo",
        ["user_id", "title", "description"],
        postgresql_using="gin",
        postgresql_ops={"title": "gin_trgm_ops", "description": "gin_trgm_ops"},
    )
    op.drop_index("ix_todo_search", table_name="todo")
    op.add_column("todo", sa.Column("recurrence", sa.Text(), nullable=True))
    op.add_column("todo", sa.Column("time_zone", sa.Text(), server_default="UTC", nullable=False))
    op.add_column("todo", sa.Column("remind_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("todo", sa.Column("next_id", sa.Uuid(), nullable=True))
    op.add_column("todo", sa.Column("previous_id", sa.Uuid(), nullable=True))
    op.create_check_constraint(
        op.f("todo_recurrence_due_check"), "todo", "recurrence IS NULL OR due_at IS NOT NULL"
    )
    op.create_check_constraint(op.f("todo_remind_before_due_check"), "todo", "remind_at <= due_at")
    op.create_unique_constraint(op.f("todo_user_id_id_key"), "todo", ["user_id", "id"])
    op.create_index(
        "ix_todo_previous",
        "todo",
        ["previous_id"],
        unique=True,
        postgresql_where=sa.text("previous_id IS NOT NULL"),
    )
    op.create_index("ix_todo_user_remind", "todo", ["user_id", "remind_at", "id"])

    op.create_table(
        "tag",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("color", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("color ~ '^#[0-9a-f]{6}$'", name=op.f("tag_color_format_check")),
        sa.CheckConstraint(
            "char_length(name) BETWEEN 1 AND 50", name=op.f("tag_name_length_check")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user.id"], name=op.f("tag_user_id_fkey"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("tag_pkey")),
        sa.UniqueConstraint("user_id", "id", name=op.f("tag_user_id_id_key")),
    )
    op.create_index(
        "ix_tag_user_name", "tag", ["user_id", sa.literal_column("lower(name)")], unique=True
    )

    op.create_table(
        "todo_tag",
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("todo_id", sa.Uuid(), nullable=False),
        sa.Column("tag_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id", "todo_id"],
            ["todo.user_id", "todo.id"],
            name="todo_tag_todo_fkey",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id", "tag_id"],
            ["tag.user_id", "tag.id"],
            name="todo_tag_tag_fkey",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("todo_id", "tag_id", name=op.f("todo_tag_pkey")),
    )
    op.create_index("ix_todo_tag_tag", "todo_tag", ["tag_id", "todo_id"])


def downgrade() -> None:
    op.drop_table("todo_tag")
    op.drop_table("tag")
    op.drop_index("ix_todo_user_remind", table_name="todo")
    op.drop_index("ix_todo_previous", table_name="todo")
    op.drop_constraint(op.f("todo_user_id_id_key"), "todo", type_="unique")
    op.drop_constraint(op.f("todo_remind_before_due_check"), "todo", type_="check")
    op.drop_constraint(op.f("todo_recurrence_due_check"), "todo", type_="check")
    for column in ("previous_id", "next_id", "remind_at", "time_zone", "recurrence"):
        op.drop_column("todo", column)
    op.create_index(
        "ix_todo_search",
        "todo",
        ["title", "description"],
        postgresql_using="gin",
        postgresql_ops={"title": "gin_trgm_ops", "description": "gin_trgm_ops"},
    )
    op.drop_index("ix_todo_user_search", table_name="todo")
    # btree_gin stays: another schema object may use it by now.
