"""Sync use cases, for one user: reading the change log from a token, firing reminders."""

from uuid import UUID

from backend.db import Database
from backend.sync import tokens
from backend.sync.errors import ResyncRequired
from backend.sync.records import ChangesPage, LogPage, Position, change_of
from backend.sync.repository import ChangeLogRepository


class SyncService:
    def __init__(self, database: Database, user_id: str) -> None:
        self._database = database
        self._user_id = user_id

    def token(self, position: Position) -> str:
        return tokens.encode(self._user_id, position)

    def position(self, token: str | None) -> Position | None:
        """Where `token` points (None: the beginning); 410 if it is not this user's."""
        if token is None:
            return None
        position, ours = tokens.decode(self._user_id, token)
        if not ours:
            raise ResyncRequired()
        return position

    async def changes(self, since: str | None, limit: int) -> ChangesPage:
        """GET /todos/changes: up to `limit` changes after `since`, and the token after them."""
        after = self.position(since)
        page = await self.read(after, limit + 1)  # one more tells whether more follow
        entries = page.entries[:limit]
        more = len(page.entries) > limit
        # Caught up: everything up to the head is seen, gaps included.
        last = entries[-1].position if more else Position.after_all_of(page.head)
        changes = [change for entry in entries if (change := change_of(entry)) is not None]
        return ChangesPage(changes=changes, next=self.token(last), more=more)

    async def read(self, after: Position | None, limit: int, *, reminders: bool = False) -> LogPage:
        """Up to `limit` log entries after `after` (None: from the beginning, which pruning
        cannot make inexact: whoever starts there wants the todos, not old deletions); 410
        if the entries after `after` cannot be told exactly."""
        async with self._database.connection() as connection:
            page = await ChangeLogRepository(connection, self._user_id).page(
                after or Position.start(), limit, reminders=reminders
            )
        if after is None:
            return page
        pruned = page.pruned_through > 0 and after < Position.after_all_of(page.pruned_through)
        if pruned or after.seq > page.head:
            # Pruned entries may have followed it (also when it points inside the newest
            # pruned write: that write's other entries went with it); or it is from the
            # future (another database, a restored backup): "after it" is not exact.
            raise ResyncRequired()
        return page

    async def head(self) -> Position:
        """The position after every entry so far."""
        page = await self.read(None, 0)
        return Position.after_all_of(page.head)

    async def fire_reminders(self) -> list[UUID]:
        """Fire the user's due reminders that have not fired (in any process)."""
        async with self._database.connection() as connection:
            return await ChangeLogRepository(connection, self._user_id).fire_reminders()
