"""`UserRepository` is bound to one user id: it can only ever see that user's row."""

import asyncpg

from backend.users.records import UserProfile
from backend.users.repository import UserRepository


def profile(email: str) -> UserProfile:
    return UserProfile(name="", email=email, email_verified=False, image=None)


async def test_get_returns_only_the_bound_user(connection: asyncpg.Connection) -> None:
    await UserRepository(connection, "a").provision(profile("a@example.com"))
    await UserRepository(connection, "b").provision(profile("b@example.com"))

    row = await UserRepository(connection, "a").get()

    assert row is not None
    assert (row.id, row.email) == ("a", "a@example.com")
    assert await UserRepository(connection, "c").get() is None


async def test_provision_writes_only_the_bound_user(connection: asyncpg.Connection) -> None:
    await UserRepository(connection, "a").provision(profile("a@example.com"))
    await UserRepository(connection, "b").provision(profile("b@example.com"))
    await UserRepository(connection, "a").provision(profile("a@new.example.com"))

    b = await UserRepository(connection, "b").get()
    assert b is not None
    assert b.email == "b@example.com"
