"""Errors: every one is RFC 9457 problem+json, and every response carries a request id."""

import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from backend.main import create_app
from backend.settings import Settings
from tests.support import TokenFactory

Headers = dict[str, str]
GENERATED_ID = re.compile(r"^[0-9a-f]{32}$")


@pytest.fixture
def alice(tokens: TokenFactory) -> Headers:
    return tokens.headers("alice")


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    for member in ("type", "title", "detail"):
        assert isinstance(problem[member], str), member
        assert problem[member], member
    return problem


async def test_unknown_route_is_a_404_problem(client: httpx.AsyncClient) -> None:
    problem = assert_problem(await client.get("/no/such/route"), 404)

    assert problem["title"] == "Not Found"


async def test_wrong_method_is_a_405_problem_with_allow(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    response = await client.put("/todos/stats", headers=alice)

    assert_problem(response, 405)
    assert response.headers["allow"] == "GET"


async def test_missing_token_is_a_401_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/todos")

    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_missing_todo_is_a_404_problem(client: httpx.AsyncClient, alice: Headers) -> None:
    assert_problem(await client.get(f"/todos/{uuid.uuid4()}", headers=alice), 404)


async def test_stale_etag_is_a_412_problem(client: httpx.AsyncClient, alice: Headers) -> None:
    created = await client.post("/todos", json={"title": "x"}, headers=alice)

    response = await client.delete(
        created.headers["location"], headers={**alice, "If-Match": '"9"'}
    )

    assert_problem(response, 412)


async def test_oversized_body_is_a_413_problem(client: httpx.AsyncClient, alice: Headers) -> None:
    body = b'{"title": "' + b"x" * 1_048_577 + b'"}'

    response = await client.post(
        "/todos", content=body, headers={**alice, "Content-Type": "application/json"}
    )

    assert_problem(response, 413)


async def test_wrong_content_type_is_a_415_problem(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    response = await client.post(
        "/todos", content=b"title=x", headers={**alice, "Content-Type": "text/plain"}
    )

    assert_problem(response, 415)


async def test_validation_error_lists_each_invalid_field(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    body = {"title": "", "priority": "urgent", "due_at": "2030-01-01T00:00:00", "owner": "x"}

    problem = assert_problem(await client.post("/todos", json=body, headers=alice), 422)

    assert sorted(tuple(error["loc"]) for error in problem["errors"]) == [
        ("body", "due_at"),
        ("body", "owner"),
        ("body", "priority"),
        ("body", "title"),
    ]
    for error in problem["errors"]:
        assert set(error) == {"loc", "msg", "type"}


async def test_validation_error_lists_query_and_path_fields(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    list_problem = assert_problem(
        await client.get("/todos", params={"limit": "0", "sort": "nope"}, headers=alice), 422
    )
    path_problem = assert_problem(await client.get("/todos/123", headers=alice), 422)

    assert sorted(tuple(e["loc"]) for e in list_problem["errors"]) == [
        ("query", "limit"),
        ("query", "sort"),
    ]
    assert [e["loc"] for e in path_problem["errors"]] == [["path", "todo_id"]]


async def test_validation_error_never_echoes_the_input(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    marker = "ECHO-" + uuid.uuid4().hex
    body = {
        "title": marker * 30,
        "description": 5,
        "priority": marker,
        "due_at": marker,
        "owner": marker,
    }

    response = await client.post("/todos", json=body, headers=alice)

    assert_problem(response, 422)
    assert marker.lower() not in response.text.lower()
    query = await client.get("/todos", params={"sort": marker, "limit": marker}, headers=alice)
    assert_problem(query, 422)
    assert marker.lower() not in query.text.lower()


@pytest.fixture
async def failing_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An app with a route that fails the way only a bug can."""
    app: FastAPI = create_app(settings)

    async def crash() -> None:
        raise RuntimeError("secret-internal-state SELECT * FROM todo")

    async def database_error(sqlstate: str) -> None:
        # What asyncpg raises for a server error with this SQLSTATE.
        raise asyncpg.PostgresError.new({"C": sqlstate, "M": "secret: SELECT * FROM todo"})

    app.add_api_route("/crash", crash)
    app.add_api_route("/database-error/{sqlstate}", database_error)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def test_unexpected_error_is_a_500_problem_revealing_nothing(
    failing_client: httpx.AsyncClient,
) -> None:
    response = await failing_client.get("/crash", headers={"X-Request-ID": "crash-1"})

    problem = assert_problem(response, 500)
    assert "secret" not in response.text
    assert "SELECT" not in response.text
    assert "Traceback" not in response.text
    assert problem["detail"] == "An unexpected error occurred."
    assert response.headers["x-request-id"] == "crash-1"


@pytest.mark.parametrize(
    "sqlstate",
    ["57P03", "57P01", "08006", "53300"],
    ids=["cannot-connect-now", "admin-shutdown", "connection-failure", "too-many-connections"],
)
async def test_database_unavailable_is_a_503_problem_with_retry_after(
    failing_client: httpx.AsyncClient, sqlstate: str
) -> None:
    response = await failing_client.get(f"/database-error/{sqlstate}")

    assert_problem(response, 503)
    assert int(response.headers["retry-after"]) > 0
    assert "secret" not in response.text


async def test_database_rejecting_a_statement_is_a_500_problem(
    failing_client: httpx.AsyncClient,
) -> None:
    response = await failing_client.get("/database-error/42P01")  # undefined table: a bug

    assert_problem(response, 500)
    assert "secret" not in response.text
    assert "retry-after" not in response.headers


async def test_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": "req-42.a:b_c"})

    assert response.headers["x-request-id"] == "req-42.a:b_c"


async def test_request_id_is_generated_when_absent(client: httpx.AsyncClient) -> None:
    first = await client.get("/healthz")
    second = await client.get("/healthz")

    assert GENERATED_ID.match(first.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/todos", 401), ("GET", "/no/such/route", 404), ("PUT", "/healthz", 405)],
)
async def test_request_id_is_on_errors_too(
    client: httpx.AsyncClient, method: str, path: str, status: int
) -> None:
    response = await client.request(method, path, headers={"X-Request-ID": "err-1"})

    assert response.status_code == status
    assert response.headers["x-request-id"] == "err-1"


async def test_request_id_is_on_body_guard_errors(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    headers = {**alice, "X-Request-ID": "guarded", "Content-Type": "text/plain"}

    response = await client.post("/todos", content=b"x", headers=headers)

    assert response.status_code == 415
    assert response.headers["x-request-id"] == "guarded"


@pytest.mark.parametrize(
    "unsafe",
    ["x" * 129, "has spaces", "line\tbreak", 'quote"d', "<script>"],
    ids=["too-long", "spaces", "tab", "quote", "markup"],
)
async def test_unsafe_request_id_is_replaced(client: httpx.AsyncClient, unsafe: str) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": unsafe})

    assert GENERATED_ID.match(response.headers["x-request-id"])


async def test_longest_safe_request_id_is_kept(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": "x" * 128})

    assert response.headers["x-request-id"] == "x" * 128
