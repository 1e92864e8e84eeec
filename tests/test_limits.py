"""Limits and hostile input (in process; the process-level bounds are in tests/production):
oversized tokens, 422s that stay small, strict types, extreme datetimes, exact 405s,
idempotency-key bounds and pruning."""

import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import jwt
import pytest

from backend import idempotency
from backend.db import Database, SavepointDatabase
from backend.errors import MAX_ERROR_TEXT, MAX_REPORTED_ERRORS
from tests.support import TEST_SECRET, TokenFactory
from tests.todos.support import Headers, create_todo, list_all


@pytest.fixture
def alice(tokens: TokenFactory) -> Headers:
    return tokens.headers("limits-alice")


# --- tokens ------------------------------------------------------------------------------


async def test_a_token_over_8_kib_is_refused_unread(client: httpx.AsyncClient) -> None:
    huge = "x" * 4_000_000  # not even a JWT: nothing of it may be parsed or verified
    started = time.perf_counter()
    response = await client.get("/todos", headers={"Authorization": f"Bearer {huge}"})
    took = time.perf_counter() - started

    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert took < 0.5


async def test_a_valid_token_just_under_the_bound_still_works(
    client: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    padded = tokens("limits-padded", image="data:image/png;base64," + "i" * 5_500)  # an avatar
    assert len(padded) < 8192
    response = await client.get("/todos", headers={"Authorization": f"Bearer {padded}"})
    assert response.status_code == 200


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": "9999999999"},
        {"exp": [1]},
        {"exp": 1e400},
        {"nbf": "0"},
        {"iat": {"a": 1}},
        {"emailVerified": "yes"},
        {"emailVerified": 1},
        {"sub": ""},
        {"sub": "s" * 256},
        {"sub": 42},
        {"email": "a\x00b@example.com"},
        {"name": "\ud800"},
        {"image": "https://img.example.com/\x00.png"},
    ],
    ids=repr,
)
async def test_ill_typed_claims_make_a_token_invalid(
    client: httpx.AsyncClient, claims: dict[str, object]
) -> None:
    now = int(time.time())
    payload = {"sub": "typed-user", "exp": now + 600, "email": "typed@example.com", **claims}
    token = jwt.encode(payload, TEST_SECRET)
    response = await client.get("/users/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401, response.text


# --- validation errors -------------------------------------------------------------------


async def test_a_flood_of_unknown_fields_gets_a_small_422_quickly(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    body = {"title": "t", **{str(n): 0 for n in range(80_000)}, "<script>x</script>": 1}
    payload = json.dumps(body).encode()
    assert 800_000 < len(payload) < 1_048_576

    started = time.perf_counter()
    response = await client.post(
        "/todos", content=payload, headers={**alice, "Content-Type": "application/json"}
    )
    took = time.perf_counter() - started

    assert response.status_code == 422
    assert len(response.content) < 8_000
    assert len(response.json()["errors"]) <= MAX_REPORTED_ERRORS
    assert "<script>" not in response.text
    assert took < 1.0


async def test_error_locations_and_messages_are_cut_short(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    response = await client.post("/todos", json={"title": "t", "k" * 100_000: 1}, headers=alice)

    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert all(len(str(part)) <= MAX_ERROR_TEXT for part in error["loc"])
    assert len(error["msg"]) <= MAX_ERROR_TEXT


# --- strict types ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"title": "t", "due_at": 0},
        {"title": "t", "due_at": 1_700_000_000.5},
        {"title": "t", "due_at": "1700000000"},
        {"title": "t", "completed": "yes"},
        {"title": "t", "completed": 1},
        {"title": "t\x00"},
        {"title": "\ud800"},
        {"title": "t", "description": "\udfff"},
    ],
    ids=repr,
)
async def test_loose_or_unstorable_values_are_422(
    client: httpx.AsyncClient, alice: Headers, body: dict[str, object]
) -> None:
    payload = json.dumps(body).encode()  # \u escapes: lone surrogates travel as valid JSON
    response = await client.post(
        "/todos", content=payload, headers={**alice, "Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text


@pytest.mark.parametrize("param", ["due_before", "due_after"])
@pytest.mark.parametrize("value", ["0.5", "1700000000", "-1"])
async def test_numbers_where_datetimes_belong_are_422(
    client: httpx.AsyncClient, alice: Headers, param: str, value: str
) -> None:
    response = await client.get("/todos", params={param: value}, headers=alice)
    assert response.status_code == 422, response.text


# --- extreme datetimes -------------------------------------------------------------------


@pytest.mark.parametrize(
    "due_at",
    ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z", "9999-12-31T23:59:59-01:00"],
)
async def test_instants_postgresql_would_store_as_infinity_are_422(
    client: httpx.AsyncClient, alice: Headers, due_at: str
) -> None:
    response = await client.post("/todos", json={"title": "t", "due_at": due_at}, headers=alice)
    assert response.status_code == 422, response.text


@pytest.mark.parametrize("sort", ["due_at", "-due_at"])
async def test_the_earliest_and_latest_storable_instants_can_be_paged_past(
    client: httpx.AsyncClient, alice: Headers, sort: str
) -> None:
    for due_at in ("0001-01-01T00:00:00.000001Z", "9999-12-31T23:59:59.999998Z", None):
        for _ in range(2):
            await create_todo(client, alice, due_at=due_at)

    listed = await list_all(client, alice, sort=sort, limit=1)

    assert len(listed) == 6
    assert {todo["due_at"] for todo in listed} == {
        "0001-01-01T00:00:00.000001Z",
        "9999-12-31T23:59:59.999998Z",
        None,
    }


# --- methods -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PATCH", "/todos/stats", "GET"),
        ("PUT", "/todos", "DELETE, GET, POST"),
        ("PUT", "/todos/{id}", "DELETE, GET, PATCH"),
        ("POST", "/users/me", "GET"),
        ("DELETE", "/healthz", "GET"),
    ],
)
async def test_an_unsupported_method_is_405_naming_every_allowed_one(
    client: httpx.AsyncClient, alice: Headers, method: str, path: str, allow: str
) -> None:
    response = await client.request(method, path.format(id=uuid.uuid4()), headers=alice)

    assert response.status_code == 405
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["allow"] == allow


async def test_clearing_with_completed_false_is_a_documented_422(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    response = await client.delete("/todos", params={"completed": "false"}, headers=alice)
    assert response.status_code == 422


# --- idempotency keys ----------------------------------------------------------------------


async def test_a_user_holding_the_most_live_keys_gets_429_with_retry_after(
    client: httpx.AsyncClient,
    alice: Headers,
    connection: asyncpg.Connection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(idempotency, "MAX_KEYS_PER_USER", 3)
    for n in range(3):
        headers = {**alice, "Idempotency-Key": f"key-{n}"}
        assert (
            await client.post("/todos", json={"title": "t"}, headers=headers)
        ).status_code == 201

    refused = await client.post(
        "/todos", json={"title": "t"}, headers={**alice, "Idempotency-Key": "key-3"}
    )
    replayed = await client.post(
        "/todos", json={"title": "t"}, headers={**alice, "Idempotency-Key": "key-0"}
    )

    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert 0 < int(refused.headers["retry-after"]) <= 24 * 3600
    assert replayed.status_code == 201  # a known key still replays
    assert replayed.headers["idempotent-replayed"] == "true"


async def test_expired_keys_are_pruned_and_live_ones_kept(
    client: httpx.AsyncClient, alice: Headers, connection: asyncpg.Connection
) -> None:
    for n in range(3):
        headers = {**alice, "Idempotency-Key": f"prune-{n}"}
        assert (
            await client.post("/todos", json={"title": "t"}, headers=headers)
        ).status_code == 201
    await connection.execute(
        "UPDATE idempotency_key SET created_at = $1 WHERE key IN ('prune-0', 'prune-1')",
        datetime.now(UTC) - timedelta(hours=25),
    )
    database: Database = SavepointDatabase(connection)

    deleted = await idempotency.prune_expired_keys(database)

    left = await connection.fetch("SELECT key FROM idempotency_key WHERE key LIKE 'prune-%'")
    assert deleted is not None
    assert deleted >= 2
    assert [row["key"] for row in left] == ["prune-2"]
