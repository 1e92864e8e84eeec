"""All SQL for tags, executed for one user (like backend.todos.repository)."""

from collections.abc import Iterator
from contextlib import contextmanager
from uuid import UUID

import asyncpg
from uuid_utils.compat import uuid7

from backend.db import Connection
from backend.sql import Statement
from backend.tags import statements
from backend.tags.errors import TagDeletedMeanwhile, TagLimitReached, TagNameTaken
from backend.tags.models import MAX_TAGS_PER_USER
from backend.tags.records import NewTag, TagChanges, TagRecord
from backend.users.errors import UserGone


class TagRepository:
    def __init__(self, connection: Connection, user_id: str) -> None:
        self._connection = connection
        self._user_id = user_id

    async def all(self) -> list[TagRecord]:
        sql = statements.LIST
        rows = await self._connection.fetch(sql.sql, *sql.args(user_id=self._user_id))
        return [TagRecord.from_row(row) for row in rows]

    async def get(self, tag_id: UUID) -> TagRecord | None:
        sql = statements.GET
        row = await self._connection.fetchrow(
            sql.sql, *sql.args(user_id=self._user_id, tag_id=tag_id)
        )
        return None if row is None else TagRecord.from_row(row)

    async def create(self, new: NewTag) -> TagRecord:
        """Must run in a transaction: it takes the user's tag-creation lock."""
        await self._lock()
        sql = statements.INSERT
        args = sql.args(
            id=uuid7(),
            user_id=self._user_id,
            name=new.name,
            color=new.color,
            max_tags=MAX_TAGS_PER_USER,
        )
        with _translated_violations():
            row = await self._connection.fetchrow(sql.sql, *args)
        if row is None:
            raise TagLimitReached()
        return TagRecord.from_row(row)

    async def update(self, tag_id: UUID, changes: TagChanges) -> TagRecord | None:
        """A rename must run in a transaction (it changes the todos carrying the tag)."""
        values = changes.values()
        if "name" in values:
            await self._take_change_number(statements.TAKE_FOR_RENAME)
        sql = statements.UPDATES[frozenset(values)]
        with _translated_violations():
            row = await self._connection.fetchrow(
                sql.sql, *sql.args(user_id=self._user_id, tag_id=tag_id, **values)
            )
        return None if row is None else TagRecord.from_row(row)

    async def delete(self, tag_id: UUID) -> bool:
        """Must run in a transaction (it changes the todos carrying the tag)."""
        await self._take_change_number(statements.TAKE_FOR_DELETE)
        sql = statements.DELETE
        deleted: int = await self._connection.fetchval(
            sql.sql, *sql.args(user_id=self._user_id, tag_id=tag_id)
        )
        return deleted > 0

    async def resolve(self, names: tuple[str, ...]) -> list[UUID]:
        """The ids of the user's tags named `names` (case-insensitively, duplicates collapsed),
        creating the missing ones with the spelling given first. Must run in a transaction."""
        if not names:
            return []
        found = await self._resolve(names)
        missing = [name for name, tag_id in found if tag_id is None]
        if missing:
            await self._lock()
            sql = statements.INSERT_NAMED
            args = sql.args(
                user_id=self._user_id,
                ids=[uuid7() for _ in missing],
                names=missing,
                max_tags=MAX_TAGS_PER_USER,
            )
            await self._connection.execute(sql.sql, *args)
            # A new statement, a new snapshot: it sees what this one and others created.
            found = await self._resolve(names)
        ids = [tag_id for _, tag_id in found if tag_id is not None]
        if len(ids) < len(found):  # some are still missing: were they refused?
            if await self._count() + len(found) - len(ids) > MAX_TAGS_PER_USER:
                raise TagLimitReached()
            raise TagDeletedMeanwhile()  # created by another request, then deleted again
        return ids

    async def _resolve(self, names: tuple[str, ...]) -> list[tuple[str, UUID | None]]:
        sql = statements.RESOLVE
        rows = await self._connection.fetch(
            sql.sql, *sql.args(user_id=self._user_id, names=list(names))
        )
        return [(name, tag_id) for name, tag_id in rows]

    async def _count(self) -> int:
        sql = statements.COUNT
        count: int = await self._connection.fetchval(sql.sql, *sql.args(user_id=self._user_id))
        return count

    async def _take_change_number(self, sql: Statement) -> None:
        """Lock the user's change counter for the rest of the transaction (see
        statements.TAKE_FOR_RENAME)."""
        with _translated_violations():
            await self._connection.execute(sql.sql, *sql.args(user_id=self._user_id))

    async def _lock(self) -> None:
        sql = statements.LOCK
        await self._connection.execute(sql.sql, *sql.args(user_id=self._user_id))


@contextmanager
def _translated_violations() -> Iterator[None]:
    """Constraint violations valid input can cause, as the problems they mean."""
    try:
        yield
    except asyncpg.UniqueViolationError as exc:
        raise TagNameTaken() from exc
    except asyncpg.ForeignKeyViolationError as exc:
        raise UserGone() from exc
