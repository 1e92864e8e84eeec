"""API schemas for tags: what a client may send and what it gets back (strict, like
backend.todos.schemas). Names are trimmed; colors are `#rrggbb`, stored lowercased."""

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from backend.schemas import InputModel
from backend.tags.models import NAME_MAX_LENGTH
from backend.tags.records import NewTag, TagChanges
from backend.text import storable

# As for todo titles: constraints first (stripping, then lengths), then storability; the
# pattern documents it for clients: no NUL, not all whitespace.
TagName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=NAME_MAX_LENGTH),
    AfterValidator(storable),
    Field(json_schema_extra={"pattern": r"^[^\u0000]*[^\s\u0000][^\u0000]*$"}),
]
Color = Annotated[
    str,
    StringConstraints(pattern=r"^#[0-9A-Fa-f]{6}$"),
    AfterValidator(str.lower),
    Field(description="`#rrggbb`; answered in lowercase."),
]


class TagCreate(InputModel):
    name: TagName
    color: Color | None = None

    def to_record(self) -> NewTag:
        return NewTag(name=self.name, color=self.color)


class TagUpdate(InputModel):
    """A partial update: absent fields stay as they are; `color: null` clears the color."""

    name: TagName = Field(default=None)  # type: ignore[assignment]
    color: Color | None = None

    def to_record(self) -> TagChanges:
        return TagChanges(**{name: getattr(self, name) for name in self.model_fields_set})


class TagRead(BaseModel):
    id: UUID
    name: str
    color: str | None
    todo_count: int = Field(description="Your todos carrying this tag, completed or not.")
    created_at: datetime
    updated_at: datetime


class TagList(BaseModel):
    items: list[TagRead] = Field(description="All your tags, by name, ignoring case.")
