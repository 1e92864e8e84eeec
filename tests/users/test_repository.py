"""`UserRepository` is bound to one user id: it can only ever see that user's row."""

from sqlmodel.ext.asyncio.session import AsyncSession

from backend.users.models import User
from backend.users.repository import UserRepository
from backend.users.schemas import UserProfile


def profile(email: str) -> UserProfile:
    return UserProfile(name="", email=email, email_verified=False, image=None)


async def test_get_returns_only_the_bound_user(session: AsyncSession) -> None:
    await UserRepository(session, "a").provision(profile("a@example.com"))
    await UserRepository(session, "b").provision(profile("b@example.com"))

    row = await UserRepository(session, "a").get()

    assert isinstance(row, User)
    assert (row.id, row.email) == ("a", "a@example.com")
    assert await UserRepository(session, "c").get() is None


async def test_provision_writes_only_the_bound_user(session: AsyncSession) -> None:
    await UserRepository(session, "a").provision(profile("a@example.com"))
    await UserRepository(session, "b").provision(profile("b@example.com"))
    await UserRepository(session, "a").provision(profile("a@new.example.com"))

    b = await UserRepository(session, "b").get()
    assert b is not None
    assert b.email == "b@example.com"
