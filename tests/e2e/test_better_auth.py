"""End to end against a real Better Auth server (npm `better-auth`, `jwt` plugin): its tokens
drive the API, on separate databases and on one shared database with one `"user"` table, in
both install orders.

Skipped, with the reason shown, only where `node`/`npm` are not installed.
"""

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import jwt
import pytest

from backend import migrations
from backend.settings import Settings
from tests.better_auth import harness
from tests.better_auth.harness import BetterAuthServer, BetterAuthUser
from tests.support import (
    alembic_check,
    bearer,
    connected,
    make_settings,
    running,
    scratch_database,
)

pytestmark = pytest.mark.skipif(
    not harness.node_available(), reason="node and npm are needed to run a real Better Auth"
)
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module", autouse=True)
def node_modules() -> None:
    harness.ensure_installed()


def sign_up(server: BetterAuthServer, name: str) -> BetterAuthUser:
    email = f"{name.lower()}-{secrets.token_hex(3)}@example.com"
    return server.sign_up(email, PASSWORD, name)


def api_settings(database_url: str, data_dir: Path, server: BetterAuthServer) -> Settings:
    """The API in JWKS mode, trusting `server`."""
    return make_settings(
        database_url,
        data_dir,
        auth_secret=None,
        auth_jwks_url=server.jwks_url,
        auth_issuer=server.issuer,
        auth_audience=server.audience,
    )


async def assert_isolated(
    client: httpx.AsyncClient, alice: BetterAuthUser, bob: BetterAuthUser
) -> None:
    created = await client.post("/todos", json={"title": "alice's"}, headers=bearer(alice.jwt))
    assert created.status_code == 201, created.text
    todo_id = created.json()["id"]
    assert (await client.get(f"/todos/{todo_id}", headers=bearer(bob.jwt))).status_code == 404
    patched = await client.patch(
        f"/todos/{todo_id}", json={"title": "mine now"}, headers=bearer(bob.jwt)
    )
    assert patched.status_code == 404
    bobs_list = await client.get("/todos", headers=bearer(bob.jwt))
    assert bobs_list.json()["items"] == []
    alices_list = await client.get("/todos", headers=bearer(alice.jwt))
    assert [item["id"] for item in alices_list.json()["items"]] == [todo_id]


async def assert_me_is(client: httpx.AsyncClient, user: BetterAuthUser) -> None:
    response = await client.get("/users/me", headers=bearer(user.jwt))
    assert response.status_code == 200, response.text
    me = response.json()
    assert (me["id"], me["email"], me["name"]) == (user.id, user.email, user.name)


# --- Separate databases: Better Auth on its own, the API verifies over HTTP (JWKS) ------------


@pytest.fixture(scope="module")
async def better_auth_database(database_url: str) -> AsyncIterator[str]:
    async with scratch_database(database_url, "better_auth_" + secrets.token_hex(4)) as url:
        yield url


@pytest.mark.parametrize("alg", ["EdDSA", "ES256", "ES512", "RS256", "PS256"])
async def test_tokens_of_every_algorithm_are_accepted(
    alg: str,
    better_auth_database: str,
    database_url: str,
    data_dir: Path,
    connection: asyncpg.Connection,
) -> None:
    with BetterAuthServer(better_auth_database, alg=alg) as server:
        user = sign_up(server, "Ada")
        assert jwt.get_unverified_header(user.jwt)["alg"] == alg
        async with running(api_settings(database_url, data_dir, server), connection) as client:
            await assert_me_is(client, user)


async def test_separate_databases_users_and_isolation(
    better_auth_database: str,
    database_url: str,
    data_dir: Path,
    connection: asyncpg.Connection,
) -> None:
    with BetterAuthServer(better_auth_database) as server:
        alice, bob = sign_up(server, "Alice"), sign_up(server, "Bob")
        async with running(api_settings(database_url, data_dir, server), connection) as client:
            await assert_me_is(client, alice)
            await assert_me_is(client, bob)
            await assert_isolated(client, alice, bob)


async def test_session_token_of_the_bearer_plugin_is_not_accepted(
    better_auth_database: str,
    database_url: str,
    data_dir: Path,
    connection: asyncpg.Connection,
) -> None:
    with BetterAuthServer(better_auth_database) as server:
        user = sign_up(server, "Eve")
        async with running(api_settings(database_url, data_dir, server), connection) as client:
            response = await client.get("/users/me", headers=bearer(user.session_token))
            assert response.status_code == 401
            assert 'error="invalid_token"' in response.headers["www-authenticate"]


# --- One shared database and one "user" table, in both install orders -------------------------


async def apply_api_migrations(url: str, data_dir: Path) -> None:
    await migrations.upgrade(url, make_settings(url, data_dir))


@pytest.mark.parametrize("first", ["api", "better_auth"])
async def test_shared_database_and_user_table(
    first: str, database_url: str, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with scratch_database(database_url, f"shared_{first}_{secrets.token_hex(3)}") as url:
        if first == "api":
            await apply_api_migrations(url, data_dir)
            harness.migrate(url)
        else:
            harness.migrate(url)
            await apply_api_migrations(url, data_dir)
        # Whichever created the shared table, the models and the database agree.
        await alembic_check(url, monkeypatch)

        with BetterAuthServer(url, migrate=False) as server:
            alice, bob = sign_up(server, "Alice"), sign_up(server, "Bob")
            async with running(api_settings(url, data_dir, server)) as client:
                # The API sees Better Auth's own rows: no second copy of a user.
                await assert_me_is(client, alice)
                await assert_isolated(client, alice, bob)
                async with connected(url) as connection:
                    assert await connection.fetchval('SELECT count(*) FROM "user"') == 2
                    server.delete_user(alice)
                    left = await connection.fetchval(
                        "SELECT count(*) FROM todo WHERE user_id = $1", alice.id
                    )
                assert left == 0  # Better Auth's delete cascaded to the API's todos
                # Her JWT still verifies until it expires; the API must not answer 500.
                stale = await client.post("/todos", json={"title": "x"}, headers=bearer(alice.jwt))
                assert stale.status_code == 401
                assert (await client.get("/users/me", headers=bearer(alice.jwt))).status_code == 401
                assert (await client.get("/todos", headers=bearer(bob.jwt))).status_code == 200
