"""Reads and writes of the `user` table, always for one user id."""

import asyncpg
from sqlalchemy import Table, bindparam, exists, func, select, tuple_
from sqlalchemy.dialects.postgresql import insert

from backend.db import Connection
from backend.sql import Statement
from backend.users.errors import EmailTaken
from backend.users.models import User
from backend.users.records import USER_FIELDS, UserProfile, UserRecord

USERS: Table = User.__table__  # type: ignore[attr-defined]
# Better Auth's camelCase columns by the model's attribute names ("email_verified").
_COLUMNS = {name: USERS.c[User.model_fields[name].sa_column.name] for name in USER_FIELDS}  # type: ignore[attr-defined]
_ME = _COLUMNS["id"] == bindparam("user_id")

_GET = Statement.compile(select(*_COLUMNS.values()).where(_ME))
_EXISTS = Statement.compile(select(exists().where(_ME)))


def _provision_statement() -> Statement:
    """Create the row; if it exists, update it only where the claims changed."""
    profile = ("name", "email", "email_verified", "image")
    columns = [_COLUMNS[name] for name in profile]
    statement = insert(USERS).values(
        {_COLUMNS["id"]: bindparam("user_id"), **{_COLUMNS[n]: bindparam(n) for n in profile}}
    )
    proposed = [statement.excluded[column.name] for column in columns]
    changed = tuple_(*columns).is_distinct_from(tuple_(*proposed))
    return Statement.compile(
        statement.on_conflict_do_update(
            index_elements=[_COLUMNS["id"]],
            set_={
                **dict(zip(columns, proposed, strict=True)),
                "updatedAt": func.statement_timestamp(),
            },
            where=changed,
        )
    )


_PROVISION = _provision_statement()


class UserRepository:
    def __init__(self, connection: Connection, user_id: str) -> None:
        self._connection = connection
        self._user_id = user_id

    async def get(self) -> UserRecord | None:
        row = await self._connection.fetchrow(_GET.sql, *_GET.args(user_id=self._user_id))
        return None if row is None else UserRecord.from_row(row)

    async def exists(self) -> bool:
        found: bool = await self._connection.fetchval(
            _EXISTS.sql, *_EXISTS.args(user_id=self._user_id)
        )
        return found

    async def provision(self, profile: UserProfile) -> None:
        """Create the row, or bring it up to date with `profile`. EmailTaken when the e-mail
        address is unique to someone else (or, once, when a concurrent first request of this
        same user inserted the row after this statement looked: the caller retries)."""
        args = _PROVISION.args(
            user_id=self._user_id,
            name=profile.name,
            email=profile.email,
            email_verified=profile.email_verified,
            image=profile.image,
        )
        try:
            await self._connection.execute(_PROVISION.sql, *args)
        except asyncpg.UniqueViolationError as exc:
            raise EmailTaken() from exc
