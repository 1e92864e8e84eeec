"""user, todo and idempotency_key tables

Revision ID: 0001
Revises:
Create Date: 2026-11-24

The `"user"` table is Better Auth's. When Better Auth migrated this database first, the table
is already there: it is adopted (checked for the expected shape) instead of created, and a
downgrade leaves it in place as long as anything else still references it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

USER_COLUMNS = {"id", "name", "email", "emailVerified", "image", "createdAt", "updatedAt"}

priority = postgresql.ENUM("low", "medium", "high", name="todo_priority", create_type=False)


def _create_or_adopt_user_table() -> None:
    inspector = sa.inspect(op.get_bind())
    if not inspector.has_table("user"):
        op.create_table(
            "user",
            sa.Column("id", sa.Text(), nullable=False),
            sa.Column("name", sa.Text(), nullable=False),
            sa.Column("email", sa.Text(), nullable=False),
            sa.Column("emailVerified", sa.Boolean(), server_default=sa.false(), nullable=False),
            sa.Column("image", sa.Text(), nullable=True),
            sa.Column(
                "createdAt",
                sa.DateTime(timezone=True),
                server_default=sa.text("now()"),
                nullable=False,
            ),
            sa.Column(
                "updatedAt",
                sa.DateTime(timezone=True),
                server_default=sa.text("now()"),
                nullable=False,
            ),
            sa.PrimaryKeyConstraint("id", name=op.f("user_pkey")),
            sa.UniqueConstraint("email", name=op.f("user_email_key")),
        )
        return
    columns = {column["name"]: column for column in inspector.get_columns("user")}
    missing = USER_COLUMNS - set(columns)
    if missing:
        raise RuntimeError(
            f'an existing "user" table lacks Better Auth columns {sorted(missing)}; '
            "it is not Better Auth's user table and cannot be adopted"
        )
    # todo.user_id is text: a numeric id (Better Auth's `useNumberId`, or another app's table)
    # would otherwise fail later with an obscure "foreign key cannot be implemented".
    if not isinstance(columns["id"]["type"], sa.String):
        raise RuntimeError(
            f'an existing "user" table has id of type {columns["id"]["type"]}, not text; '
            "it cannot be adopted (Better Auth must use its default string ids)"
        )
    if columns["emailVerified"].get("default") is None:
        # Better Auth's own CREATE TABLE gives "emailVerified" no default (only its ALTER path
        # adds `DEFAULT false`): add the one the model declares, so that `alembic check` sees
        # no drift whichever of the two created the table. Better Auth always sets the value.
        op.alter_column("user", "emailVerified", server_default=sa.false())


def upgrade() -> None:
    # Trigram indexes serve the case-insensitive `q` search; pg_trgm is a trusted extension.
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    _create_or_adopt_user_table()
    priority.create(op.get_bind(), checkfirst=True)
    op.create_table(
        "todo",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("completed", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("priority", priority, server_default="medium", nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
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
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.CheckConstraint(
            "char_length(title) BETWEEN 1 AND 255", name=op.f("todo_title_length_check")
        ),
        sa.CheckConstraint(
            "char_length(description) <= 10000", name=op.f("todo_description_length_check")
        ),
        sa.CheckConstraint(
            "completed = (completed_at IS NOT NULL)", name=op.f("todo_completed_at_check")
        ),
        sa.CheckConstraint("version >= 1", name=op.f("todo_version_positive_check")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user.id"], name=op.f("todo_user_id_fkey"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("todo_pkey")),
    )
    op.create_index(
        "ix_todo_user_created",
        "todo",
        ["user_id", sa.text("created_at DESC"), sa.text("id DESC")],
    )
    op.create_index("ix_todo_user_due", "todo", ["user_id", "due_at", "id"])
    op.create_index("ix_todo_user_priority", "todo", ["user_id", "priority", "id"])
    op.create_index("ix_todo_user_title", "todo", ["user_id", sa.text("lower(title)"), "id"])
    op.create_index(
        "ix_todo_search",
        "todo",
        ["title", "description"],
        postgresql_using="gin",
        postgresql_ops={"title": "gin_trgm_ops", "description": "gin_trgm_ops"},
    )

    op.create_table(
        "idempotency_key",
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("request_hash", sa.Text(), nullable=False),
        sa.Column("status_code", sa.SmallInteger(), nullable=False),
        sa.Column("response_body", postgresql.JSONB(), nullable=False),
        sa.Column("response_headers", postgresql.JSONB(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user.id"], name=op.f("idempotency_key_user_id_fkey"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "key", name=op.f("idempotency_key_pkey")),
    )
    op.create_index("ix_idempotency_key_created_at", "idempotency_key", ["created_at"])


def downgrade() -> None:
    op.drop_table("idempotency_key")
    op.drop_table("todo")
    priority.drop(op.get_bind(), checkfirst=True)
    referenced_by_others = op.get_bind().scalar(
        sa.text(
            "SELECT EXISTS (SELECT 1 FROM pg_constraint "
            "WHERE contype = 'f' AND confrelid = '\"user\"'::regclass)"
        )
    )
    if not referenced_by_others:  # Better Auth's session/account tables keep it alive
        op.drop_table("user")
