"""The shapes of GET /todos/changes and of /events' data, for the OpenAPI document (the
router encodes the records of backend.sync.records directly)."""

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from backend.todos.schemas import TodoRead

MAX_CHANGES_PER_PAGE = 500


class ChangesQuery(BaseModel):
    """Query parameters of GET /todos/changes."""

    model_config = ConfigDict(strict=False)

    since: str | None = Field(
        default=None,
        max_length=64,
        description="A `next` from an earlier answer (or an event's id); omit to start from "
        "the beginning.",
    )
    limit: int = Field(default=100, ge=1, le=MAX_CHANGES_PER_PAGE)


class UpsertChange(BaseModel):
    op: Literal["upsert"]
    todo: TodoRead = Field(description="The todo as it is now.")


class DeleteChange(BaseModel):
    op: Literal["delete"]
    id: UUID = Field(description="The id of the deleted todo.")


class ReminderEvent(BaseModel):
    """The data of an `event: reminder` on /events."""

    op: Literal["reminder"]
    remind_at: datetime
    todo: TodoRead


class ChangesPage(BaseModel):
    changes: list[UpsertChange | DeleteChange] = Field(
        description="In the order they happened; a todo changed several times appears once, "
        "as it is now."
    )
    next: str = Field(description="Pass as `since` next time: the position after `changes`.")
    more: bool = Field(description="More changes follow: ask again with `next` at once.")
