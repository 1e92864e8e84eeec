"""The OpenAPI document: valid, complete, and true to the server (schemathesis agrees)."""

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from backend.main import create_app
from backend.settings import Settings
from backend.users.models import User
from tests.support import TEST_SECRET, TokenFactory

PROBLEM = "application/problem+json"
TODO_OPERATIONS = {
    ("get", "/todos"): "listTodos",
    ("post", "/todos"): "createTodo",
    ("delete", "/todos"): "deleteCompletedTodos",
    ("get", "/todos/stats"): "getTodoStats",
    ("get", "/todos/{todo_id}"): "getTodo",
    ("patch", "/todos/{todo_id}"): "updateTodo",
    ("delete", "/todos/{todo_id}"): "deleteTodo",
    ("get", "/todos/changes"): "listTodoChanges",
}
FUZZ_USER = f"schemathesis-{uuid.uuid4().hex}"
ASGI_BASE_URL = f"http://{asgi.HOST}"


@pytest.fixture
async def document(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def test_document_is_valid_openapi(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    # Against the OpenAPI 3.1 meta-schema schemathesis ships; raises if invalid.
    schemathesis.openapi.from_dict(document).validate()


def test_bearer_security_scheme_is_declared(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]

    assert schemes == {
        "HTTPBearer": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": schemes["HTTPBearer"]["description"],
        }
    }


def operation(document: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    found: dict[str, Any] = document["paths"][path][method]
    return found


def test_every_todo_operation_has_its_stable_operation_id(document: dict[str, Any]) -> None:
    documented = {
        (method, path): spec["operationId"]
        for path, item in document["paths"].items()
        if path.startswith("/todos")
        for method, spec in item.items()
    }

    assert documented == TODO_OPERATIONS


@pytest.mark.parametrize(("method", "path"), list(TODO_OPERATIONS))
def test_every_todo_operation_requires_the_bearer_token(
    document: dict[str, Any], method: str, path: str
) -> None:
    assert operation(document, method, path)["security"] == [{"HTTPBearer": []}]


@pytest.mark.parametrize(("method", "path"), list(TODO_OPERATIONS))
@pytest.mark.parametrize("status", ["401", "422"])
def test_every_todo_operation_documents_its_errors_as_problems(
    document: dict[str, Any], method: str, path: str, status: str
) -> None:
    response = operation(document, method, path)["responses"][status]

    assert response["content"] == {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}


def test_problem_schema_requires_the_rfc_9457_members(document: dict[str, Any]) -> None:
    problem = document["components"]["schemas"]["Problem"]

    assert set(problem["required"]) == {"type", "title", "status", "detail"}
    assert "errors" in problem["properties"]


@pytest.mark.parametrize(("method", "path"), [("post", "/todos"), ("patch", "/todos/{todo_id}")])
def test_body_errors_are_documented(document: dict[str, Any], method: str, path: str) -> None:
    responses = operation(document, method, path)["responses"]

    for status in ("413", "415"):
        assert PROBLEM in responses[status]["content"]


def test_create_documents_location_and_etag(document: dict[str, Any]) -> None:
    created = operation(document, "post", "/todos")["responses"]["201"]

    assert created["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/TodoRead"
    }
    assert created["headers"]["Location"]["required"] is True
    assert created["headers"]["ETag"]["required"] is True
    assert "Idempotent-Replayed" in created["headers"]


@pytest.mark.parametrize(
    ("method", "path"), [("get", "/todos/{todo_id}"), ("patch", "/todos/{todo_id}")]
)
def test_etag_is_documented_on_single_todo_responses(
    document: dict[str, Any], method: str, path: str
) -> None:
    assert operation(document, method, path)["responses"]["200"]["headers"]["ETag"]["required"]


def test_request_headers_are_documented(document: dict[str, Any]) -> None:
    def headers(method: str, path: str) -> set[str]:
        parameters = operation(document, method, path).get("parameters", [])
        return {p["name"].lower() for p in parameters if p["in"] == "header"}

    assert "idempotency-key" in headers("post", "/todos")
    assert "if-match" in headers("patch", "/todos/{todo_id}")
    assert "if-match" in headers("delete", "/todos/{todo_id}")


# -- schemathesis ---------------------------------------------------------------------------
#
# The operations are collected from the document of an app built at import time (building the
# document needs no database); the requests go to an app on the test database, which
# schemathesis' ASGI client starts (lifespan included) on its own event loop. Those requests
# commit, so the fuzzing user and everything it created are deleted afterwards.
# (`schemathesis.pytest.from_fixture` would load the schema lazily, but it breaks on pytest 9:
# it sets `request.node._nodeid`, which pytest 9 no longer has.)

# GET /events is a stream that never ends by itself: tests/sync tests it on real servers.
api_schema = schemathesis.openapi.from_dict(
    create_app(Settings(_env_file=None, auth_secret=TEST_SECRET)).openapi()
).exclude(operation_id="streamEvents")


@pytest.fixture
def fuzz_headers(tokens: TokenFactory) -> dict[str, str]:
    """A valid bearer token for the fuzzing user (fresh per test: tokens expire)."""
    return tokens.headers(FUZZ_USER)


@pytest.fixture(scope="session")
async def fuzz_client(settings: Settings, engine: AsyncEngine) -> AsyncIterator[asgi.ASGIClient]:
    app: Any = create_app(settings)  # an ASGI app; schemathesis' type for one is narrower
    with asgi.get_client(app) as client:
        yield client
    asgi.shutdown_lifespans()
    async with engine.begin() as connection:
        await connection.execute(delete(User).where(col(User.id) == FUZZ_USER))


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
FUZZ_SETTINGS = settings(
    max_examples=15, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)


@api_schema.parametrize()
@FUZZ_SETTINGS
def test_server_agrees_with_its_openapi_document(
    case: Any, fuzz_client: asgi.ASGIClient, fuzz_headers: dict[str, str]
) -> None:
    case.call_and_validate(
        session=fuzz_client, base_url=ASGI_BASE_URL, headers=fuzz_headers, checks=CHECKS
    )


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
def test_server_agrees_with_its_openapi_document_on_existing_todos(
    method: str, fuzz_client: asgi.ASGIClient, fuzz_headers: dict[str, str]
) -> None:
    """Generated ids almost never exist: point each generated case at a todo just created,
    so the success responses (and their headers) are checked too."""
    operation = api_schema["/todos/{todo_id}"][method]
    cases = operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(
        GenerationMode.NEGATIVE
    )

    @given(case=cases)
    @FUZZ_SETTINGS
    def check(case: Any) -> None:
        created = fuzz_client.post(
            "/todos",
            json={"title": "fuzzed", "due_at": "2030-01-01T00:00:00Z"},
            headers=fuzz_headers,
        )
        assert created.status_code == 201, created.text
        case.path_parameters = {**(case.path_parameters or {}), "todo_id": created.json()["id"]}
        case.call_and_validate(
            session=fuzz_client, base_url=ASGI_BASE_URL, headers=fuzz_headers, checks=CHECKS
        )

    check()
