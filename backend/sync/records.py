"""What the sync layers pass each other: positions in a user's change log and its entries."""

from datetime import datetime
from typing import Literal
from uuid import UUID

from msgspec import Struct

from backend.todos.records import TodoRecord

# The greatest id: (seq, LAST_ID) is the position after every entry numbered `seq`.
LAST_ID = UUID(int=(1 << 128) - 1)


class Position(Struct, frozen=True, order=True):
    """A place in one user's change log: after the entry (seq, id). Entries are ordered by
    their change number, then by todo id (one write may change several todos)."""

    seq: int
    id: UUID

    @classmethod
    def start(cls) -> "Position":
        """Before every entry (todos written before the log existed carry number 0)."""
        return cls(0, UUID(int=0))

    @classmethod
    def after_all_of(cls, seq: int) -> "Position":
        return cls(seq, LAST_ID)


type Op = Literal["upsert", "delete", "reminder"]


class Entry(Struct, frozen=True):
    """One entry of the log: a todo as it is now (upsert), a deleted todo's id (delete), or
    a reminder that fired (with the todo as it is now; None if it was deleted since)."""

    op: Op
    position: Position
    todo_id: UUID
    todo: TodoRecord | None = None
    remind_at: datetime | None = None  # the moment a `reminder` was set for


class LogPage(Struct, frozen=True):
    """Entries after a position, and the log's state in the same snapshot."""

    entries: list[Entry]
    head: int  # the last change number handed out
    pruned_through: int  # entries numbered up to this may have been pruned


# The changes as clients receive them (GET /todos/changes, and the `data:` of /events).


class Upsert(Struct, frozen=True, tag_field="op", tag="upsert"):
    todo: TodoRecord


class Delete(Struct, frozen=True, tag_field="op", tag="delete"):
    id: UUID


class Reminded(Struct, frozen=True, tag_field="op", tag="reminder"):
    remind_at: datetime
    todo: TodoRecord


type Change = Upsert | Delete | Reminded


def change_of(entry: Entry) -> Change | None:
    """What a client receives for `entry`; None for a reminder whose todo is gone."""
    if entry.op == "delete":
        return Delete(entry.todo_id)
    if entry.todo is None:
        return None
    if entry.op == "reminder" and entry.remind_at is not None:
        return Reminded(entry.remind_at, entry.todo)
    return Upsert(entry.todo)


class ChangesPage(Struct, frozen=True):
    changes: list[Change]
    next: str
    more: bool
