"""`GET /users/me` and provisioning (docs/auth.md): the user row is created on first sight from the
token's claims and kept in step with them; no separate sign-up call."""

import asyncio
from collections.abc import Iterator
from datetime import datetime

import asyncpg
import httpx
import pytest
from asyncpg.connection import LoggedQuery
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from backend.settings import Settings
from backend.users.models import User
from tests.support import TokenFactory, me, running


@pytest.fixture
def statements(connection: asyncpg.Connection) -> Iterator[list[str]]:
    """Every SQL statement the app sends on the test's connection, in order."""
    sent: list[str] = []

    def record(query: LoggedQuery) -> None:
        sent.append(query.query)

    connection.add_query_logger(record)
    yield sent
    connection.remove_query_logger(record)


def upserts(statements: list[str]) -> list[str]:
    return [s for s in statements if s.lstrip().upper().startswith('INSERT INTO "USER"')]


async def test_first_request_creates_the_user_from_the_claims(
    client: httpx.AsyncClient, tokens: TokenFactory, connection: asyncpg.Connection
) -> None:
    token = tokens(
        "ada",
        email="ada@example.com",
        name="Ada Lovelace",
        image="https://img.example.com/ada.png",
        emailVerified=True,
    )
    response = await me(client, token)

    assert response.status_code == 200
    body = response.json()
    assert body == {
        "id": "ada",
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "email_verified": True,
        "image": "https://img.example.com/ada.png",
        "created_at": body["created_at"],
        "updated_at": body["updated_at"],
    }
    datetime.fromisoformat(body["created_at"])
    row = await connection.fetchrow(
        'SELECT name, email, "emailVerified", image FROM "user" WHERE id = $1', "ada"
    )
    assert row is not None
    assert tuple(row) == (
        "Ada Lovelace",
        "ada@example.com",
        True,
        "https://img.example.com/ada.png",
    )


async def test_changed_claims_update_the_row(
    client: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    first = await me(client, tokens("ada", email="ada@example.com", name="Ada", image="a.png"))
    second = await me(
        client,
        tokens("ada", email="ada@lovelace.org", name="Ada L.", emailVerified=True, image=None),
    )

    assert second.status_code == 200
    assert second.json() | {"updated_at": None} == {
        "id": "ada",
        "name": "Ada L.",
        "email": "ada@lovelace.org",
        "email_verified": True,
        "image": None,
        "created_at": first.json()["created_at"],
        "updated_at": None,
    }
    assert second.json()["updated_at"] > first.json()["updated_at"]


async def test_token_without_email_gets_a_placeholder_address(
    client: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    response = await me(client, tokens("anonymous-1", email=None))
    assert response.status_code == 200
    assert response.json()["email"] == "anonymous-1@no-email.invalid"
    assert response.json()["name"] == ""


async def test_email_held_by_another_user_is_a_409_problem(
    client: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    assert (await me(client, tokens("ada", email="shared@example.com"))).status_code == 200

    response = await me(client, tokens("impostor", email="shared@example.com"))

    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 409
    # The failed upsert left the transaction usable and the owner untouched.
    owner = await me(client, tokens("ada", email="shared@example.com"))
    assert owner.status_code == 200
    assert owner.json()["email"] == "shared@example.com"


async def test_known_user_is_not_upserted_again(
    client: httpx.AsyncClient, tokens: TokenFactory, statements: list[str]
) -> None:
    claims = {"email": "ada@example.com", "name": "Ada"}

    assert (await me(client, tokens("ada", **claims))).status_code == 200
    assert len(upserts(statements)) == 1

    statements.clear()
    for _ in range(3):  # new tokens, same profile
        assert (await me(client, tokens("ada", **claims))).status_code == 200
    assert upserts(statements) == []

    # A changed profile is written again.
    assert (await me(client, tokens("ada", **claims | {"name": "Ada L."}))).status_code == 200
    assert len(upserts(statements)) == 1


async def test_failed_request_does_not_mark_the_user_known(
    client: httpx.AsyncClient, tokens: TokenFactory, statements: list[str]
) -> None:
    assert (await me(client, tokens("ada", email="shared@example.com"))).status_code == 200
    assert (await me(client, tokens("bob", email="shared@example.com"))).status_code == 409
    statements.clear()
    assert (await me(client, tokens("bob", email="shared@example.com"))).status_code == 409
    assert upserts(statements)  # still not known: tried again


async def test_concurrent_first_requests_of_a_new_user_all_succeed(
    settings: Settings, engine: AsyncEngine, tokens: TokenFactory
) -> None:
    """Real commits (not the rolled-back test transaction): eight requests race to create
    the same user, several rounds over."""
    users = [f"racer-{n}" for n in range(20)]
    try:
        async with running(settings) as api:
            for user in users:
                token = tokens(user, name=user)
                responses = await asyncio.gather(*(me(api, token) for _ in range(8)))
                assert [r.status_code for r in responses] == [200] * 8, [
                    r.text for r in responses if r.status_code != 200
                ]
                assert {r.json()["id"] for r in responses} == {user}
    finally:
        async with engine.begin() as connection:
            await connection.execute(delete(User).where(col(User.id).in_(users)))
