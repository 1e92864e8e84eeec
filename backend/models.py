"""Every table, imported in one place so the metadata Alembic compares against is complete."""

from sqlmodel import SQLModel

from backend.todos.models import Todo
from backend.users.models import User

metadata = SQLModel.metadata

__all__ = ["Todo", "User", "metadata"]
