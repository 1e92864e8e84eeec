"""Reads and writes of the `user` table, always for one user id."""

from typing import Any

from sqlalchemy import Row, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col

from backend.auth.verifier import InvalidToken
from backend.base import utc_now
from backend.errors import Conflict
from backend.users.models import User
from backend.users.schemas import UserProfile

# Attribute name -> column ("email_verified" -> "emailVerified"): Better Auth's camelCase.
_USER_COLUMNS = {name: col(getattr(User, name)) for name in User.model_fields}


class UserGone(InvalidToken):
    """The token verifies, but its user was deleted (by Better Auth, on a shared database)
    after this process provisioned it: answered like any other unusable token."""


class EmailTaken(Conflict):
    def __init__(self) -> None:
        super().__init__("The token's e-mail address belongs to another user.")


class UserRepository:
    def __init__(self, connection: AsyncConnection, user_id: str) -> None:
        self._connection = connection
        self._user_id = user_id

    async def get(self) -> Row[Any] | None:
        """The row, its columns labelled with the model's attribute names."""
        columns: list[Any] = [column.label(name) for name, column in _USER_COLUMNS.items()]
        statement = select(*columns).where(col(User.id) == self._user_id)
        return (await self._connection.execute(statement)).first()

    async def provision(self, profile: UserProfile) -> None:
        """Create the row on first sight of a user; update it when the claims changed."""
        values = {
            "id": self._user_id,
            "name": profile.name,
            "email": profile.email,
            "emailVerified": profile.email_verified,
            "image": profile.image,
        }
        statement = insert(User).values(values)
        changed = tuple_(
            col(User.name), col(User.email), col(User.email_verified), col(User.image)
        ).is_distinct_from(
            tuple_(
                statement.excluded.name,
                statement.excluded.email,
                statement.excluded.emailVerified,
                statement.excluded.image,
            )
        )
        statement = statement.on_conflict_do_update(
            index_elements=[col(User.id)],
            set_={**values, "updatedAt": utc_now()},
            where=changed,
        )
        # A unique violation on the e-mail has two causes. Another id holds the address: a 409.
        # Or a concurrent first request of this very user inserted the row after this
        # statement's ON CONFLICT (id) check and committed it: PostgreSQL then reports the
        # e-mail index, not the id conflict. The row is visible now, so one retry settles it.
        for attempt in range(2):
            try:
                async with self._connection.begin_nested():
                    await self._connection.execute(statement)
                return
            except IntegrityError as exc:
                if attempt:
                    raise EmailTaken() from exc
