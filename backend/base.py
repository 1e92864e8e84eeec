"""What every table shares: the constraint naming convention and timestamp columns.

The convention reproduces PostgreSQL's own default names (`user_pkey`, `user_email_key`,
`todo_user_id_fkey`), so a `"user"` table created by Better Auth and one created by our
migration carry identical constraint names and Alembic sees no drift either way.
"""

from typing import Any

from sqlalchemy import Column, DateTime, func
from sqlmodel import SQLModel

NAMING_CONVENTION = {
    "pk": "%(table_name)s_pkey",
    "uq": "%(table_name)s_%(column_0_N_name)s_key",
    "fk": "%(table_name)s_%(column_0_name)s_fkey",
    "ck": "%(table_name)s_%(constraint_name)s_check",
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
}
SQLModel.metadata.naming_convention = NAMING_CONVENTION


def timestamp_column(name: str | None = None, *, nullable: bool = False, **kwargs: Any) -> Any:
    """A timestamptz column; `now()` by default when not nullable."""
    if not nullable:
        kwargs.setdefault("server_default", func.now())
    if name is None:
        return Column(DateTime(timezone=True), nullable=nullable, **kwargs)
    return Column(name, DateTime(timezone=True), nullable=nullable, **kwargs)
