"""Constraints the database itself enforces, whatever code writes to it.

Rows go in through the table models (which never validate) or raw SQL, so every rejection
here comes from PostgreSQL, not from the API's schemas.
"""

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import delete, func, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend.idempotency import IdempotencyKey
from backend.todos.models import Priority, Todo
from backend.users.models import User


async def add_user(session: AsyncSession, email: str | None = None) -> User:
    user_id = f"user-{uuid.uuid4().hex[:12]}"
    user = User(id=user_id, name="Ada", email=email or f"{user_id}@example.com")
    session.add(user)
    await session.flush()
    return user


async def add_todo(session: AsyncSession, user_id: str, **values: Any) -> Todo:
    todo = Todo(user_id=user_id, **{"title": "Buy milk", **values})
    session.add(todo)
    await session.flush()
    return todo


@pytest.fixture
async def user(session: AsyncSession) -> User:
    return await add_user(session)


async def test_a_todo_needs_an_existing_user(session: AsyncSession) -> None:
    with pytest.raises(IntegrityError, match="todo_user_id_fkey"):
        await add_todo(session, "nobody")


@pytest.mark.parametrize("length", [1, 255])
async def test_title_of_1_to_255_characters_is_accepted(
    session: AsyncSession, user: User, length: int
) -> None:
    todo = await add_todo(session, user.id, title="t" * length)

    stored = await session.scalar(
        select(func.char_length(col(Todo.title))).where(col(Todo.id) == todo.id)
    )
    assert stored == length


@pytest.mark.parametrize("length", [0, 256])
async def test_title_outside_1_to_255_characters_is_rejected(
    session: AsyncSession, user: User, length: int
) -> None:
    with pytest.raises(IntegrityError, match="todo_title_length_check"):
        await add_todo(session, user.id, title="t" * length)


async def test_title_length_counts_characters_not_bytes(session: AsyncSession, user: User) -> None:
    await add_todo(session, user.id, title="é" * 255)  # 510 bytes in UTF-8


async def test_description_of_10000_characters_is_accepted(
    session: AsyncSession, user: User
) -> None:
    await add_todo(session, user.id, description="d" * 10_000)


async def test_description_over_10000_characters_is_rejected(
    session: AsyncSession, user: User
) -> None:
    with pytest.raises(IntegrityError, match="todo_description_length_check"):
        await add_todo(session, user.id, description="d" * 10_001)


@pytest.mark.parametrize(
    ("completed", "completed_at"),
    [(True, None), (False, datetime(2026, 1, 1, tzinfo=UTC))],
    ids=["completed-without-time", "time-without-completed"],
)
async def test_completed_and_completed_at_must_agree(
    session: AsyncSession, user: User, completed: bool, completed_at: datetime | None
) -> None:
    with pytest.raises(IntegrityError, match="todo_completed_at_check"):
        await add_todo(session, user.id, completed=completed, completed_at=completed_at)


async def test_completed_with_its_time_is_accepted(session: AsyncSession, user: User) -> None:
    done = datetime(2026, 1, 1, tzinfo=UTC)
    todo = await add_todo(session, user.id, completed=True, completed_at=done)

    assert todo.completed_at == done


async def test_version_starts_at_1_and_cannot_drop_below(session: AsyncSession, user: User) -> None:
    todo = await add_todo(session, user.id)
    assert await session.scalar(select(col(Todo.version)).where(col(Todo.id) == todo.id)) == 1

    with pytest.raises(IntegrityError, match="todo_version_positive_check"):
        await add_todo(session, user.id, version=0)


async def test_server_defaults_fill_a_minimal_row(session: AsyncSession, user: User) -> None:
    await session.execute(
        text("INSERT INTO todo (id, user_id, title, change_seq) VALUES (:id, :user_id, 'x', 0)"),
        {"id": uuid.uuid4(), "user_id": user.id},
    )
    row = (
        await session.execute(
            text(
                "SELECT completed, completed_at, priority::text, version, created_at, updated_at "
                "FROM todo WHERE user_id = :user_id"
            ),
            {"user_id": user.id},
        )
    ).one()

    assert row[:4] == (False, None, "medium", 1)
    assert row.created_at.tzinfo is not None
    assert row.updated_at.tzinfo is not None


async def test_a_todo_written_without_a_change_number_is_refused(
    session: AsyncSession, user: User
) -> None:
    """No default: a statement that forgot to stamp its write fails loudly, instead of
    leaving a todo the change feed would never report."""
    with pytest.raises(DBAPIError, match="change_seq"):
        await session.execute(
            text("INSERT INTO todo (id, user_id, title) VALUES (:id, :user_id, 'x')"),
            {"id": uuid.uuid4(), "user_id": user.id},
        )


async def test_priority_outside_the_enum_is_rejected(session: AsyncSession, user: User) -> None:
    with pytest.raises(DBAPIError, match="todo_priority"):
        await session.execute(
            text("INSERT INTO todo (id, user_id, title, priority) VALUES (:id, :u, 'x', 'urgent')"),
            {"id": uuid.uuid4(), "u": user.id},
        )


async def test_priority_sorts_low_medium_high_in_sql(session: AsyncSession, user: User) -> None:
    # Alphabetically it would be high < low < medium.
    for priority in (Priority.medium, Priority.high, Priority.low):
        await add_todo(session, user.id, priority=priority)

    ascending = await session.scalars(
        select(col(Todo.priority)).where(col(Todo.user_id) == user.id).order_by(col(Todo.priority))
    )
    assert list(ascending) == [Priority.low, Priority.medium, Priority.high]
    highest = await session.scalar(
        select(func.max(col(Todo.priority))).where(col(Todo.user_id) == user.id)
    )
    assert highest == Priority.high


async def test_email_is_unique(session: AsyncSession, user: User) -> None:
    with pytest.raises(IntegrityError, match="user_email_key"):
        await add_user(session, email=user.email)


async def test_deleting_a_user_deletes_their_todos_and_idempotency_keys(
    session: AsyncSession, user: User
) -> None:
    other = await add_user(session)
    for owner in (user, other):
        await add_todo(session, owner.id)
        session.add(
            IdempotencyKey(
                user_id=owner.id,
                key="k1",
                request_hash="h",
                status_code=201,
                response_body={},
                response_headers={},
            )
        )
    await session.flush()

    # As Better Auth deletes an account: plain SQL, no ORM cascade involved.
    await session.execute(delete(User).where(col(User.id) == user.id))

    async def count(model: Any, owner: User) -> int | None:
        return await session.scalar(
            select(func.count()).select_from(model).where(model.user_id == owner.id)
        )

    assert await count(Todo, user) == 0
    assert await count(IdempotencyKey, user) == 0
    assert await count(Todo, other) == 1
    assert await count(IdempotencyKey, other) == 1


async def test_a_user_row_written_the_way_better_auth_writes_it_is_valid(
    session: AsyncSession,
) -> None:
    # Better Auth knows only its own columns; anything the API adds needs a default.
    await session.execute(
        text(
            'INSERT INTO "user" (id, name, email, "emailVerified", "createdAt", "updatedAt") '
            "VALUES ('ba-1', 'Grace', 'grace@example.com', true, now(), now())"
        )
    )
    stored = await session.get(User, "ba-1")

    assert stored is not None
    assert (stored.email, stored.email_verified, stored.image) == ("grace@example.com", True, None)
