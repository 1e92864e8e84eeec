"""Keyset pagination for GET /todos: each sort order's ORDER BY and "after this row"
condition, and the opaque cursor that carries the last row's position.

Every order ends in `id`, so rows with equal keys still have a strict order and pages never
overlap or skip, whatever is inserted or deleted between requests. `due_at` and `remind_at`
are nullable: todos without one come last in both directions.
"""

import base64
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any, Literal, get_args
from uuid import UUID

import msgspec
from msgspec import Struct
from sqlalchemy import ColumnElement, and_, bindparam, func, or_, tuple_

from backend.errors import UnprocessableContent
from backend.todos.models import TODOS, Priority
from backend.todos.records import TodoRecord

C = TODOS.c

SortKey = Literal[
    "created_at", "-created_at", "due_at", "-due_at", "priority", "-priority", "title", "-title",
    "remind_at", "-remind_at",
]  # fmt: skip
NULLABLE_KEYS = frozenset({"due_at", "remind_at"})
MOMENT_KEYS = frozenset({"created_at", "due_at", "remind_at"})
SORT_KEYS: tuple[str, ...] = get_args(SortKey)

# Not a secret: the cursor only positions the caller within their own rows, and every value
# in it is validated and bound as a parameter. The checksum makes edited cursors fail loudly.
_CHECKSUM_KEY = b"todo-api cursor v1"


class InvalidCursor(UnprocessableContent):
    def __init__(self) -> None:
        super().__init__("The cursor is malformed or belongs to another sort order.")


class _CursorData(Struct, frozen=True, array_like=True, forbid_unknown_fields=True):
    sort: str
    id: UUID
    key: str | None  # the sort key of the last row, as text


@dataclass(frozen=True, slots=True)
class Position:
    """The last row of a page: its sort key and id."""

    key: datetime | Priority | str | None
    id: UUID


@dataclass(frozen=True)
class SortOrder:
    name: str  # e.g. "-due_at"
    field: str
    descending: bool

    @staticmethod
    @cache
    def parse(sort: str) -> "SortOrder":
        if sort not in SORT_KEYS:
            raise ValueError(f"unknown sort {sort!r}")
        return SortOrder(name=sort, field=sort.removeprefix("-"), descending=sort.startswith("-"))

    @property
    def key(self) -> Any:
        if self.field == "title":
            return func.lower(C.title)
        return C[self.field]

    def order_by(self) -> list[Any]:
        direction = "desc" if self.descending else "asc"
        key = getattr(self.key, direction)()
        if self.field in NULLABLE_KEYS:
            key = key.nulls_last()
        return [key, getattr(C.id, direction)()]

    def after(self, null_key: bool) -> ColumnElement[bool]:
        """Rows after the position bound as `after_key` and `after_id` (only `after_id` when
        the position's key is null: nulls come last)."""
        after_id = bindparam("after_id", type_=C.id.type)
        column = C[self.field]
        if null_key:
            return and_(column.is_(None), self._beyond(C.id, after_id))
        after_key = bindparam("after_key", type_=C[self.field].type)
        # PostgreSQL lowers the cursor's title exactly as it lowers the column. Python's
        # str.lower() differs (final sigma, dotted I, ...), which repeated or skipped rows.
        key = func.lower(after_key) if self.field == "title" else after_key
        beyond = self._beyond(tuple_(self.key, C.id), tuple_(key, after_id))
        if self.field in NULLABLE_KEYS:
            return or_(and_(column.is_not(None), beyond), column.is_(None))
        return beyond

    def _beyond(self, left: Any, right: Any) -> ColumnElement[bool]:
        return left < right if self.descending else left > right  # type: ignore[no-any-return]

    def key_of(self, todo: TodoRecord) -> str | None:
        # A title travels as it is, not lowered: see `after`.
        value = getattr(todo, self.field)
        if value is None or isinstance(value, str):  # Priority is a str too
            return value
        return str(value.isoformat())

    def parse_key(self, text: str | None) -> datetime | Priority | str | None:
        """The sort key a cursor carries, as the column's type; ValueError if it cannot be
        one (a cursor is client input: it may have been made up)."""
        if text is None:
            if self.field not in NULLABLE_KEYS:
                raise ValueError(f"{self.field} is never null")
            return None
        if self.field in MOMENT_KEYS:
            moment = datetime.fromisoformat(text)
            if moment.tzinfo is None:
                raise ValueError("naive datetime")
            try:
                return moment.astimezone(UTC)
            except OverflowError:  # an offset that pushes it past year 1 or 9999
                raise ValueError("datetime out of range") from None
        if self.field == "priority":
            return Priority(text)
        if "\x00" in text or not _encodable(text):
            raise ValueError("not a storable title")
        return text


def _checksum(payload: bytes) -> str:
    return hashlib.blake2b(payload, key=_CHECKSUM_KEY, digest_size=8).hexdigest()


def _encodable(text: str) -> bool:
    """Whether `text` is valid Unicode (no lone surrogates, which no database can store)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def encode_cursor(order: SortOrder, todo: TodoRecord) -> str:
    payload = msgspec.json.encode(_CursorData(order.name, todo.id, order.key_of(todo)))
    token = f"{_checksum(payload)}.".encode() + payload
    return base64.urlsafe_b64encode(token).decode().rstrip("=")


def decode_cursor(order: SortOrder, cursor: str) -> Position:
    try:
        token = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        checksum, _, payload = token.partition(b".")
        if checksum.decode() != _checksum(payload):
            raise InvalidCursor()
        data = msgspec.json.decode(payload, type=_CursorData)
        if data.sort != order.name:
            raise InvalidCursor()
        return Position(key=order.parse_key(data.key), id=data.id)
    # binascii.Error and UnicodeDecodeError are ValueErrors.
    except (ValueError, msgspec.ValidationError, msgspec.DecodeError):
        raise InvalidCursor() from None
