"""Housekeeping a running API does by itself: deleting expired Idempotency-Key records, and
change-log entries (tombstones, fired reminders) older than CHANGES_RETENTION_DAYS
(`todo-api prune` does the same once). Every instance runs the loop; an advisory lock lets
one of them do the work at a time, and the rest skip that round."""

import asyncio
import logging
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from backend.db import Database
from backend.errors import is_outage
from backend.idempotency import prune_expired_keys
from backend.settings import Settings
from backend.sync.repository import prune_log

logger = logging.getLogger(__name__)


async def prune(database: Database, settings: Settings) -> int | None:
    """One round: the number of records deleted, or None if another process was pruning."""
    deleted = await prune_expired_keys(database)
    if deleted:
        logger.info("pruned %d expired idempotency keys", deleted)
    entries = await prune_log(database, keep_seconds=settings.changes_retention_days * 86_400)
    if entries:
        logger.info("pruned %d change-log entries", entries)
    if deleted is None and entries is None:
        return None
    return (deleted or 0) + (entries or 0)


async def _prune_forever(database: Database, settings: Settings) -> None:
    interval = settings.idempotency_prune_seconds
    # Instances started together spread out: the first round comes at a random point of the
    # first interval.
    await asyncio.sleep(random.uniform(0, interval))  # noqa: S311 - not for security
    while True:
        try:
            await prune(database, settings)
        except Exception as exc:
            if is_outage(exc):
                logger.warning("pruning skipped: database unavailable (%s)", type(exc).__name__)
            else:
                logger.exception("pruning failed")
        await asyncio.sleep(interval)


@asynccontextmanager
async def housekeeping(database: Database, settings: Settings) -> AsyncIterator[None]:
    task = asyncio.create_task(_prune_forever(database, settings), name="housekeeping")
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
