"""Idempotency-Key for POST (IETF httpapi draft): per user, kept 24 hours.

The first request with a key takes a transaction-scoped advisory lock on (user, key), does its
work, and stores its response in the same transaction. A retry that arrives while the lock is
held gets 409; one that arrives after the commit finds the stored response and replays it; one
with the same key but another body gets 422. Nothing outlives a crash: the lock and the
uncommitted row vanish with the transaction.
"""

import hashlib
import math
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Column,
    ForeignKey,
    Index,
    SmallInteger,
    Text,
    and_,
    bindparam,
    cast,
    delete,
    func,
    literal_column,
    select,
    tuple_,
)
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlmodel import Field, SQLModel

from backend.base import timestamp_column
from backend.db import Connection, Database
from backend.errors import Conflict, ProblemError, UnprocessableContent
from backend.sql import Statement

KEY_LIFETIME = timedelta(hours=24)
# Live keys one user may hold; the next new key is refused (429) until the oldest expires.
MAX_KEYS_PER_USER = 10_000
# Expired keys deleted per statement by the pruner: short transactions, bounded locks.
PRUNE_BATCH = 5_000
# The pruner's advisory lock: one instance prunes at a time ("todo-idk" as a number).
PRUNE_LOCK_KEY = int.from_bytes(b"todo-idk", "big")
# A structured-field string ("...") of printable ASCII; bare keys are accepted too.
KEY_HEADER_PATTERN = r'^"?[\x21-\x7e]{1,255}"?$'


class IdempotencyKey(SQLModel, table=True):
    __tablename__ = "idempotency_key"
    __table_args__ = (Index("ix_idempotency_key_created_at", "created_at"),)

    user_id: str = Field(
        sa_column=Column(Text, ForeignKey("user.id", ondelete="CASCADE"), primary_key=True)
    )
    key: str = Field(sa_column=Column(Text, primary_key=True))
    request_hash: str = Field(sa_column=Column(Text, nullable=False))
    status_code: int = Field(sa_column=Column(SmallInteger, nullable=False))
    response_body: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    response_headers: dict[str, str] = Field(sa_column=Column(JSONB, nullable=False))
    created_at: datetime | None = Field(default=None, sa_column=timestamp_column())


class KeyInFlight(Conflict):
    def __init__(self) -> None:
        super().__init__("A request with this Idempotency-Key is still being processed.")


class KeyReused(UnprocessableContent):
    def __init__(self) -> None:
        super().__init__("This Idempotency-Key was used with a different request body.")


class TooManyKeys(ProblemError):
    status, slug = 429, "too-many-idempotency-keys"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"You hold {MAX_KEYS_PER_USER} live Idempotency-Keys; a key lasts 24 hours.",
            headers={"Retry-After": str(retry_after)},
        )


def parse_key(header: str) -> str:
    """The draft defines the key as a structured-field string ("..."); bare keys are accepted."""
    if len(header) >= 2 and header[0] == header[-1] == '"':
        return header[1:-1]
    return header


def fingerprint(body: bytes | str) -> str:
    data = body.encode() if isinstance(body, str) else body
    return hashlib.sha256(data).hexdigest()


_TABLE = IdempotencyKey.__table__  # type: ignore[attr-defined]
_T = _TABLE.c
_MINE = and_(_T.user_id == bindparam("user_id"), _T.key == bindparam("key"))
_LOCK = Statement.compile(
    select(func.pg_try_advisory_xact_lock(func.hashtextextended(bindparam("lock_name"), 0)))
)
_STORED = Statement.compile(
    select(_T.request_hash, _T.response_body).where(
        _MINE, _T.created_at > func.now() - KEY_LIFETIME
    )
)
_LIVE = Statement.compile(
    select(
        func.count(),
        func.extract("epoch", func.min(_T.created_at) + KEY_LIFETIME - func.now()),
    ).where(_T.user_id == bindparam("user_id"), _T.created_at > func.now() - KEY_LIFETIME)
)
_expired = (
    select(_T.user_id, _T.key).where(_T.created_at <= func.now() - KEY_LIFETIME).limit(PRUNE_BATCH)
)
_PRUNE = Statement.compile(
    delete(_TABLE).where(tuple_(_T.user_id, _T.key).in_(_expired.scalar_subquery()))
)
_PRUNE_LOCK = Statement.compile(select(func.pg_try_advisory_xact_lock(bindparam("key"))))
_SAVE_VALUES = {
    "user_id": bindparam("user_id"),
    "key": bindparam("key"),
    "request_hash": bindparam("request_hash"),
    # POST /todos is the one idempotent operation: its status is always 201, and its
    # headers (Location, ETag) follow from the body.
    "status_code": literal_column("201"),
    "response_body": cast(bindparam("body", type_=Text), JSONB),
    "response_headers": literal_column("'{}'::jsonb"),
    "created_at": func.now(),
}
_insert = insert(_TABLE).values(_SAVE_VALUES)
# An expired record under the same key is replaced.
_SAVE = Statement.compile(
    _insert.on_conflict_do_update(
        index_elements=[_T.user_id, _T.key],
        set_={
            name: _insert.excluded[name] for name in _SAVE_VALUES if name not in ("user_id", "key")
        },
    )
)


class IdempotencyStore:
    """The keys of one user, inside the transaction of the request that uses one."""

    def __init__(self, connection: Connection, user_id: str) -> None:
        self._connection = connection
        self._user_id = user_id

    async def claim(self, key: str, request_hash: str) -> str | None:
        """Lock `key` for this transaction; the stored outcome (JSON) if it already ran."""
        lock_name = self._user_id + "\x1f" + key
        if not await self._connection.fetchval(_LOCK.sql, *_LOCK.args(lock_name=lock_name)):
            raise KeyInFlight()
        stored = await self._connection.fetchrow(
            _STORED.sql, *_STORED.args(user_id=self._user_id, key=key)
        )
        if stored is None:
            await self._check_room()
            return None
        stored_hash, body = stored
        if stored_hash != request_hash:
            raise KeyReused()
        return str(body)

    async def _check_room(self) -> None:
        """TooManyKeys when the user already holds the most live keys allowed."""
        live, oldest_expires_in = await self._connection.fetchrow(
            _LIVE.sql, *_LIVE.args(user_id=self._user_id)
        ) or (0, None)
        if live >= MAX_KEYS_PER_USER:
            raise TooManyKeys(retry_after=max(1, math.ceil(oldest_expires_in or 1)))

    async def save(self, key: str, request_hash: str, outcome: bytes) -> None:
        """Store the outcome (JSON) of the request that claimed `key`."""
        args = _SAVE.args(
            user_id=self._user_id, key=key, request_hash=request_hash, body=outcome.decode()
        )
        await self._connection.execute(_SAVE.sql, *args)


async def prune_expired_keys(database: Database) -> int | None:
    """Delete expired keys of every user, in batches; None if another process is pruning.
    Maintenance, not a user's request: the one statement here not scoped to a user."""
    deleted = 0
    while True:
        async with database.transaction() as connection:
            if not await connection.fetchval(
                _PRUNE_LOCK.sql, *_PRUNE_LOCK.args(key=PRUNE_LOCK_KEY)
            ):
                return deleted or None
            status = await connection.execute(_PRUNE.sql, *_PRUNE.args())
        batch = int(status.rsplit(" ", 1)[-1])  # "DELETE <n>"
        deleted += batch
        if batch < PRUNE_BATCH:
            return deleted
