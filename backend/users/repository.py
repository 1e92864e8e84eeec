"""Reads and writes of the `user` table, always for one user id."""

from sqlalchemy import tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend.base import utc_now
from backend.errors import Conflict
from backend.users.models import User
from backend.users.schemas import UserProfile


class EmailTaken(Conflict):
    def __init__(self) -> None:
        super().__init__("The token's e-mail address belongs to another user.")


class UserRepository:
    def __init__(self, session: AsyncSession, user_id: str) -> None:
        self._session = session
        self._user_id = user_id

    async def get(self) -> User | None:
        return await self._session.get(User, self._user_id)

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
        try:
            await self._session.execute(statement)
        except IntegrityError as exc:  # the e-mail's unique key: another id holds it
            raise EmailTaken() from exc
