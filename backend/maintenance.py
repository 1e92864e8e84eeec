"""Housekeeping a running API does by itself: today, deleting expired Idempotency-Key records
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

logger = logging.getLogger(__name__)


async def prune(database: Database) -> int | None:
    """One round: the number of records deleted, or None if another process was pruning."""
    deleted = await prune_expired_keys(database)
    if deleted:
        logger.info("pruned %d expired idempotency keys", deleted)
    return deleted


async def _prune_forever(database: Database, interval: float) -> None:
    # Instances started together spread out: the first round comes at a random point of the
    # first interval.
    await asyncio.sleep(random.uniform(0, interval))  # noqa: S311 - not for security
    while True:
        try:
            await prune(database)
        except Exception as exc:
            if is_outage(exc):
                logger.warning("pruning skipped: database unavailable (%s)", type(exc).__name__)
            else:
                logger.exception("pruning failed")
        await asyncio.sleep(interval)


@asynccontextmanager
async def housekeeping(database: Database, interval: float) -> AsyncIterator[None]:
    task = asyncio.create_task(_prune_forever(database, interval), name="housekeeping")
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
