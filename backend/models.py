"""Every table, imported in one place so the metadata Alembic compares against is complete."""

from sqlmodel import SQLModel

from backend.idempotency import IdempotencyKey
from backend.sync.models import ChangeCounter, Reminder, TodoTombstone
from backend.tags.models import Tag, TodoTag
from backend.todos.models import Todo
from backend.users.models import User

metadata = SQLModel.metadata

__all__ = [
    "ChangeCounter",
    "IdempotencyKey",
    "Reminder",
    "Tag",
    "Todo",
    "TodoTag",
    "TodoTombstone",
    "User",
    "metadata",
]
