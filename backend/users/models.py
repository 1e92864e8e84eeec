"""The `user` table, column for column Better Auth's PostgreSQL schema.

Better Auth and this API may share one database and this one table (either may create it
first), so column names stay camelCase as Better Auth writes them; only the Python attribute
names are snake_case. A column added here must be nullable or have a default, because Better
Auth inserts rows without knowing about it.
"""

from datetime import datetime

from sqlalchemy import Boolean, Column, Text, false
from sqlmodel import Field, SQLModel

from backend.base import timestamp_column


class User(SQLModel, table=True):
    __tablename__ = "user"

    id: str = Field(sa_column=Column(Text, primary_key=True))
    name: str = Field(sa_column=Column(Text, nullable=False))
    email: str = Field(sa_column=Column(Text, nullable=False, unique=True))
    # Better Auth's own migration gives this column `DEFAULT false`; so do we, so that either
    # may create the table and `alembic check` sees no drift.
    email_verified: bool = Field(
        default=False,
        sa_column=Column("emailVerified", Boolean, nullable=False, server_default=false()),
    )
    image: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime | None = Field(default=None, sa_column=timestamp_column("createdAt"))
    updated_at: datetime | None = Field(default=None, sa_column=timestamp_column("updatedAt"))
