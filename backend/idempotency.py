"""Idempotency-Key for POST (IETF httpapi draft): per user, kept 24 hours.

The first request with a key takes a transaction-scoped advisory lock on (user, key), does its
work, and stores its response in the same transaction. A retry that arrives while the lock is
held gets 409; one that arrives after the commit finds the stored response and replays it; one
with the same key but another body gets 422. Nothing outlives a crash: the lock and the
uncommitted row vanish with the transaction.
"""

import hashlib
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Column, ForeignKey, Index, Row, SmallInteger, Text, func, select
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import Field, SQLModel, col

from backend.base import timestamp_column
from backend.errors import Conflict, UnprocessableContent

KEY_LIFETIME = timedelta(hours=24)
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


def parse_key(header: str) -> str:
    """The draft defines the key as a structured-field string ("..."); bare keys are accepted."""
    if len(header) >= 2 and header[0] == header[-1] == '"':
        return header[1:-1]
    return header


def fingerprint(body: bytes | str) -> str:
    data = body.encode() if isinstance(body, str) else body
    return hashlib.sha256(data).hexdigest()


class IdempotencyStore:
    def __init__(self, connection: AsyncConnection, user_id: str) -> None:
        self._connection = connection
        self._user_id = user_id

    async def claim(self, key: str, request_hash: str) -> Row[Any] | None:
        """Lock `key` for this transaction; return the stored response if it already ran."""
        lock_id = func.hashtextextended(self._user_id + "\x1f" + key, 0)
        if not await self._connection.scalar(select(func.pg_try_advisory_xact_lock(lock_id))):
            raise KeyInFlight()
        result = await self._connection.execute(
            select(IdempotencyKey.__table__).where(  # type: ignore[attr-defined]
                col(IdempotencyKey.user_id) == self._user_id,
                col(IdempotencyKey.key) == key,
                col(IdempotencyKey.created_at) > func.now() - KEY_LIFETIME,
            )
        )
        stored = result.first()
        if stored is not None and stored.request_hash != request_hash:
            raise KeyReused()
        return stored

    async def save(
        self,
        key: str,
        request_hash: str,
        status_code: int,
        body: dict[str, Any],
        headers: dict[str, str],
    ) -> None:
        values = {
            "user_id": self._user_id,
            "key": key,
            "request_hash": request_hash,
            "status_code": status_code,
            "response_body": body,
            "response_headers": headers,
            "created_at": func.now(),
        }
        statement = insert(IdempotencyKey).values(values)
        # An expired record under the same key is replaced.
        statement = statement.on_conflict_do_update(index_elements=["user_id", "key"], set_=values)
        await self._connection.execute(statement)
