"""Tag use cases, for one user (see backend.todos.service for how units of work are chosen)."""

from typing import NoReturn
from uuid import UUID

from msgspec import UNSET

from backend.db import Database
from backend.sync.announce import Announce, unannounced
from backend.tags.errors import TagNotFound
from backend.tags.records import NewTag, TagChanges, TagRecord
from backend.tags.repository import TagRepository
from backend.users.service import check_user_exists


class TagService:
    def __init__(self, database: Database, user_id: str, announce: Announce = unannounced) -> None:
        self._database = database
        self._user_id = user_id
        self._announce = announce  # renames and deletes change the todos carrying the tag

    async def all(self) -> list[TagRecord]:
        async with self._database.connection() as connection:
            return await TagRepository(connection, self._user_id).all()

    async def get(self, tag_id: UUID) -> TagRecord:
        async with self._database.connection() as connection:
            tag = await TagRepository(connection, self._user_id).get(tag_id)
        if tag is None:
            await self._not_found()
        return tag

    async def create(self, new: NewTag) -> TagRecord:
        # The bound on tags per user is checked under a lock that lives as long as this
        # transaction.
        async with self._database.transaction() as connection:
            return await TagRepository(connection, self._user_id).create(new)

    async def update(self, tag_id: UUID, changes: TagChanges) -> TagRecord:
        if not changes.values():
            return await self.get(tag_id)
        renaming = changes.name is not UNSET
        # A rename changes the todos carrying the tag: two statements, one transaction.
        unit = self._database.transaction() if renaming else self._database.connection()
        async with unit as connection:
            tag = await TagRepository(connection, self._user_id).update(tag_id, changes)
        if tag is None:
            await self._not_found()
        if renaming:
            self._announce(self._user_id)
        return tag

    async def delete(self, tag_id: UUID) -> None:
        async with self._database.transaction() as connection:
            deleted = await TagRepository(connection, self._user_id).delete(tag_id)
        if not deleted:
            await self._not_found()
        self._announce(self._user_id)

    async def _not_found(self) -> NoReturn:
        await check_user_exists(self._database, self._user_id)  # 401 if the user is gone
        raise TagNotFound()
