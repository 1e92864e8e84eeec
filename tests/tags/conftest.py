"""Fixtures for the /tags tests: the /todos fixtures (users, the committed app and client)
reused as they are, so both packages race and roll back the same way."""

from tests.todos.conftest import (  # noqa: F401
    alice,
    bob,
    committed_app,
    committed_client,
    committed_user,
    probe,
)
