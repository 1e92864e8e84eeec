"""What the tag layers pass each other: typed, immutable records (like backend.todos.records)."""

from datetime import datetime
from typing import Any, Self
from uuid import UUID

from msgspec import UNSET, Struct, UnsetType


class TagRecord(Struct, frozen=True):
    id: UUID
    name: str
    color: str | None
    todo_count: int  # the user's todos carrying it, completed or not
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> Self:
        return cls(*row)


TAG_FIELDS: tuple[str, ...] = TagRecord.__struct_fields__


class NewTag(Struct, frozen=True):
    name: str
    color: str | None = None


class TagChanges(Struct, frozen=True):
    name: str | UnsetType = UNSET
    color: str | UnsetType | None = UNSET  # None clears it

    def values(self) -> dict[str, Any]:
        return {
            name: value
            for name in self.__struct_fields__
            if (value := getattr(self, name)) is not UNSET
        }
