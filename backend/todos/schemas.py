"""API schemas for todos: what a client may send and what it gets back.

Input models are strict (backend.schemas): unknown fields (`user_id`, `id`, `version`, ...)
are rejected, never silently applied; text must be storable; datetimes are ISO-8601 strings
with an offset; booleans are JSON booleans. Titles are trimmed.
"""

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    model_validator,
)

from backend.schemas import InputModel, UtcDatetime
from backend.tags.schemas import TagName
from backend.text import NO_NUL_PATTERN, storable
from backend.todos.models import DESCRIPTION_MAX_LENGTH, TITLE_MAX_LENGTH, Priority
from backend.todos.pagination import SortKey
from backend.todos.records import NewTodo, TodoChanges, TodoFilter
from backend.todos.recurrence import check_time_zone, normalize_rule, time_zones

MAX_TAGS_PER_TODO = 20

# The constraints first (stripping, then lengths), then the storability check: pydantic
# applies constraints given after a validator to the unstripped value. The patterns only
# document, for clients and schema-driven tools, what the validators enforce: no NUL, and a
# title that is not all whitespace.
Title = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=TITLE_MAX_LENGTH),
    AfterValidator(storable),
    Field(json_schema_extra={"pattern": r"^[^\u0000]*[^\s\u0000][^\u0000]*$"}),
]
Description = Annotated[
    str,
    StringConstraints(max_length=DESCRIPTION_MAX_LENGTH),
    AfterValidator(storable),
    Field(json_schema_extra={"pattern": NO_NUL_PATTERN}),
]
Recurrence = Annotated[
    str,
    StringConstraints(max_length=200),
    AfterValidator(normalize_rule),
    Field(
        # The characters a rule can have; which rules are valid the description says (a 422
        # names what is wrong).
        pattern=r"^[A-Za-z0-9=;,+\-]+$",
        description=(
            "An RFC 5545 RRULE value without the `RRULE:` prefix: FREQ=DAILY|WEEKLY|MONTHLY|"
            "YEARLY, optional INTERVAL (1-1000), BYDAY (weekly), BYMONTHDAY (monthly), COUNT or "
            "UNTIL (UTC, `Z`). Needs due_at. Answered in a normal form."
        ),
        examples=["FREQ=WEEKLY;BYDAY=MO,WE,FR", "FREQ=MONTHLY;BYMONTHDAY=31;COUNT=12"],
    ),
]
TimeZone = Annotated[
    str,
    StringConstraints(max_length=64),
    AfterValidator(check_time_zone),
    Field(
        description="An IANA time zone; recurrences keep the local time of day in it.",
        json_schema_extra={"enum": time_zones()},
    ),
]
TagNames = Annotated[
    list[TagName],
    Field(
        max_length=MAX_TAGS_PER_TODO,
        description=(
            "The todo's whole tag set, by name (case-insensitive). Unknown names create tags; "
            "duplicates collapse."
        ),
    ),
]
SearchText = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200),
    AfterValidator(storable),
    Field(json_schema_extra={"pattern": NO_NUL_PATTERN}),
]


class TodoCreate(InputModel):
    title: Title
    description: Description | None = None
    completed: StrictBool = False
    priority: Priority = Priority.medium
    due_at: UtcDatetime | None = None
    remind_at: UtcDatetime | None = Field(default=None, description="Not after due_at.")
    recurrence: Recurrence | None = None
    time_zone: TimeZone = "UTC"
    tags: TagNames = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> "TodoCreate":
        if self.recurrence is not None:
            if self.due_at is None:
                raise ValueError("a recurring todo needs a due_at: occurrences follow from it")
            if self.completed:
                raise ValueError("a recurring todo cannot be created completed")
        if self.remind_at and self.due_at and self.remind_at > self.due_at:
            raise ValueError("remind_at must not be after due_at")
        return self

    def to_record(self) -> NewTodo:
        return NewTodo(
            title=self.title,
            description=self.description,
            completed=self.completed,
            priority=self.priority,
            due_at=self.due_at,
            remind_at=self.remind_at,
            recurrence=self.recurrence,
            time_zone=self.time_zone,
            tags=tuple(self.tags),
        )


class TodoUpdate(InputModel):
    """A partial update: absent fields stay as they are; `null` clears a nullable one."""

    # Defaults of None mark "absent"; an explicit null still fails the type (not nullable).
    title: Title = Field(default=None)  # type: ignore[assignment]
    description: Description | None = None
    completed: StrictBool = Field(default=None)  # type: ignore[assignment]
    priority: Priority = Field(default=None)  # type: ignore[assignment]
    due_at: UtcDatetime | None = None
    remind_at: UtcDatetime | None = Field(
        default=None, description="Not after due_at; `null` dismisses the reminder."
    )
    recurrence: Recurrence | None = None
    time_zone: TimeZone = Field(default=None)  # type: ignore[assignment]
    tags: TagNames = Field(default=None)  # type: ignore[arg-type]

    def to_record(self) -> TodoChanges:
        values = {name: getattr(self, name) for name in self.model_fields_set}
        if "tags" in values:
            values["tags"] = tuple(values["tags"])
        return TodoChanges(**values)


class TodoRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    title: str
    description: str | None
    completed: bool
    completed_at: datetime | None
    priority: Priority
    due_at: datetime | None
    remind_at: datetime | None
    recurrence: str | None
    time_zone: str
    tags: list[str] = Field(description="Tag names, sorted ignoring case.")
    next_id: UUID | None = Field(
        description="The successor its completion spawned (recurring todos); kept for ever."
    )
    previous_id: UUID | None = Field(description="The todo whose completion spawned this one.")
    created_at: datetime
    updated_at: datetime
    version: int = Field(description="Incremented by every change; the ETag is derived from it.")


class TodoPage(BaseModel):
    items: list[TodoRead]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )


class TodoListQuery(BaseModel):
    """Query parameters of GET /todos."""

    completed: bool | None = None
    priority: Priority | None = None
    q: SearchText | None = Field(
        default=None, description="Case-insensitive literal text search in title and description."
    )
    due_before: UtcDatetime | None = Field(default=None, description="Exclusive bound.")
    due_after: UtcDatetime | None = Field(default=None, description="Inclusive bound.")
    remind_before: UtcDatetime | None = Field(
        default=None,
        description="Exclusive bound on remind_at; with completed=false, what is due a reminder.",
    )
    tag: list[TagName] | None = Field(
        default=None,
        max_length=MAX_TAGS_PER_TODO,
        description="Repeatable: todos carrying all these tags (names ignore case).",
    )
    sort: SortKey = Field(
        default="-created_at",
        description=(
            "Sort key, `-` for descending. Todos without due_at (remind_at) come last both ways."
        ),
    )
    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = Field(default=None, max_length=512)

    def to_filter(self) -> TodoFilter:
        return TodoFilter(
            completed=self.completed,
            priority=self.priority,
            text=self.q,
            due_after=self.due_after,
            due_before=self.due_before,
            remind_before=self.remind_before,
            tags=None if self.tag is None else tuple(self.tag),
        )


class TodoStats(BaseModel):
    total: int
    completed: int
    active: int
    overdue: int = Field(description="Not completed and due before now.")


class DeletedCount(BaseModel):
    deleted: int
