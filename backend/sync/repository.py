"""All SQL of the change log. `ChangeLogRepository` reads and writes one user's log; the
functions below it serve the process-wide loop and pruning (maintenance, not requests)."""

from typing import Any
from uuid import UUID

from backend.db import Connection, Database
from backend.sync import statements
from backend.sync.records import Entry, LogPage, Position
from backend.todos.records import TodoRecord

_TODO_COLUMNS = 6  # where a log row's todo columns start (see statements.log_page)


class ChangeLogRepository:
    def __init__(self, connection: Connection, user_id: str) -> None:
        self._connection = connection
        self._user_id = user_id

    async def page(self, after: Position, limit: int, *, reminders: bool = False) -> LogPage:
        """Up to `limit` entries after `after` (fired reminders too, with `reminders`), and
        the log's head and horizon as the same snapshot saw them."""
        sql = statements.log_page(reminders=reminders)
        rows = await self._connection.fetch(
            sql.sql,
            *sql.args(user_id=self._user_id, after_seq=after.seq, after_id=after.id, limit=limit),
        )
        head, pruned_through = rows[0][0], rows[0][1]
        entries = [_entry(row) for row in rows if row[2] is not None]  # None: no entries
        return LogPage(entries=entries, head=head, pruned_through=pruned_through)

    async def fire_reminders(self) -> list[UUID]:
        """Claim the user's due reminders that have not fired; the ids of their todos."""
        sql = statements.FIRE_REMINDERS
        rows = await self._connection.fetch(sql.sql, *sql.args(user_id=self._user_id))
        return [row[0] for row in rows]


def _entry(row: Any) -> Entry:
    _, _, op, seq, todo_id, remind_at = row[:_TODO_COLUMNS]
    todo = None if row[_TODO_COLUMNS] is None else TodoRecord.from_row(row[_TODO_COLUMNS:])
    return Entry(op, Position(seq, todo_id), todo_id, todo, remind_at)


async def watch(connection: Connection, user_ids: list[str]) -> list[tuple[str, int, bool]]:
    """For each of `user_ids`: its log's head, and whether a reminder of theirs is due."""
    sql = statements.HEADS
    rows = await connection.fetch(sql.sql, *sql.args(user_ids=user_ids))
    return [(user_id, head, due) for user_id, head, due in rows]


PRUNE_BATCH = 5_000


async def prune_log(database: Database, keep_seconds: int) -> int | None:
    """Delete tombstones and fired reminders older than `keep_seconds`, in batches, moving
    each user's horizon past them; None if another process was pruning (each batch holds
    a lock that lets one process at a time through, so that two never wait on each other's
    counters)."""
    pruned = 0
    for sql in (statements.PRUNE_TOMBSTONES, statements.PRUNE_REMINDERS):
        while True:
            async with database.transaction() as connection:
                lock = statements.PRUNE_LOCK
                if not await connection.fetchval(lock.sql, *lock.args()):
                    return pruned or None
                batch: int = await connection.fetchval(
                    sql.sql, *sql.args(keep=keep_seconds, batch=PRUNE_BATCH)
                )
            pruned += batch
            if batch < PRUNE_BATCH:
                break
    return pruned
