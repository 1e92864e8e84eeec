"""POST /todos: what a client may send, and what it gets back."""

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.todos.support import Headers, create_todo, list_all

ONE_MIB = 1_048_576


def assert_rejected(response: httpx.Response, status: int = 422) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    return problem


def error_locations(problem: dict[str, Any]) -> list[list[str | int]]:
    return [error["loc"] for error in problem["errors"]]


async def test_create_answers_201_with_location_and_etag(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    response = await client.post("/todos", json={"title": "Buy milk"}, headers=alice)

    assert response.status_code == 201
    todo = response.json()
    assert response.headers["location"] == f"/todos/{todo['id']}"
    assert response.headers["etag"] == '"1"'
    fetched = await client.get(response.headers["location"], headers=alice)
    assert fetched.json() == todo
    assert fetched.headers["etag"] == response.headers["etag"]


async def test_create_returns_the_todo_with_defaults(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    todo = await create_todo(client, alice, title="Buy milk")

    assert todo["title"] == "Buy milk"
    assert todo["description"] is None
    assert todo["completed"] is False
    assert todo["completed_at"] is None
    assert todo["priority"] == "medium"
    assert todo["due_at"] is None
    assert todo["version"] == 1
    assert todo["created_at"] == todo["updated_at"]


async def test_title_is_trimmed(client: httpx.AsyncClient, alice: Headers) -> None:
    todo = await create_todo(client, alice, title="  \t Buy milk \n ")

    assert todo["title"] == "Buy milk"


async def test_all_fields_are_stored(client: httpx.AsyncClient, alice: Headers) -> None:
    todo = await create_todo(
        client,
        alice,
        title="Pay rent",
        description="Before the 5th",
        priority="high",
        due_at="2030-01-05T09:00:00Z",
    )

    assert todo["description"] == "Before the 5th"
    assert todo["priority"] == "high"
    assert todo["due_at"] == "2030-01-05T09:00:00Z"


async def test_created_completed_gets_completed_at(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    todo = await create_todo(client, alice, title="Done already", completed=True)

    assert todo["completed"] is True
    assert todo["completed_at"] is not None
    assert todo["completed_at"] == todo["created_at"]


async def test_timestamps_are_utc_iso8601(client: httpx.AsyncClient, alice: Headers) -> None:
    todo = await create_todo(client, alice, completed=True, due_at="2030-01-05T09:00:00Z")

    for field in ("created_at", "updated_at", "completed_at", "due_at"):
        moment = datetime.fromisoformat(todo[field])
        assert moment.utcoffset() == timedelta(0), field
        assert todo[field].endswith("Z"), field


async def test_due_at_offset_is_normalised_to_utc(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    todo = await create_todo(client, alice, due_at="2030-06-01T12:30:00+02:00")

    assert todo["due_at"] == "2030-06-01T10:30:00Z"


@pytest.mark.parametrize(
    "due_at", ["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00"], ids=["after", "before"]
)
async def test_due_at_outside_the_representable_utc_range_is_422(
    client: httpx.AsyncClient, alice: Headers, due_at: str
) -> None:
    response = await client.post("/todos", json={"title": "x", "due_at": due_at}, headers=alice)

    assert error_locations(assert_rejected(response)) == [["body", "due_at"]]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("user_id", "bob"),
        ("id", "01900000-0000-7000-8000-000000000000"),
        ("version", 7),
        ("created_at", "2020-01-01T00:00:00Z"),
    ],
)
async def test_unknown_fields_are_rejected_not_applied(
    client: httpx.AsyncClient, alice: Headers, field: str, value: Any
) -> None:
    response = await client.post("/todos", json={"title": "x", field: value}, headers=alice)

    assert error_locations(assert_rejected(response)) == [["body", field]]
    assert await list_all(client, alice) == []


@pytest.mark.parametrize("field", ["title", "description"])
async def test_nul_characters_are_rejected(
    client: httpx.AsyncClient, alice: Headers, field: str
) -> None:
    body = {"title": "x", field: "nul \x00 inside"}

    response = await client.post("/todos", json=body, headers=alice)

    assert error_locations(assert_rejected(response)) == [["body", field]]


@pytest.mark.parametrize(
    "title", ["", "   \t\n ", "x" * 256], ids=["empty", "whitespace-only", "256-chars"]
)
async def test_invalid_titles_are_rejected(
    client: httpx.AsyncClient, alice: Headers, title: str
) -> None:
    response = await client.post("/todos", json={"title": title}, headers=alice)

    assert error_locations(assert_rejected(response)) == [["body", "title"]]


async def test_missing_title_is_rejected(client: httpx.AsyncClient, alice: Headers) -> None:
    response = await client.post("/todos", json={"description": "no title"}, headers=alice)

    assert error_locations(assert_rejected(response)) == [["body", "title"]]


async def test_lengths_at_the_limits_are_accepted(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    todo = await create_todo(client, alice, title="t" * 255, description="d" * 10_000)

    assert len(todo["title"]) == 255
    assert len(todo["description"]) == 10_000


async def test_description_over_10000_chars_is_rejected(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    body = {"title": "x", "description": "d" * 10_001}

    response = await client.post("/todos", json=body, headers=alice)

    assert error_locations(assert_rejected(response)) == [["body", "description"]]


async def test_unknown_priority_is_rejected(client: httpx.AsyncClient, alice: Headers) -> None:
    response = await client.post("/todos", json={"title": "x", "priority": "urgent"}, headers=alice)

    assert error_locations(assert_rejected(response)) == [["body", "priority"]]


async def test_naive_due_at_is_rejected(client: httpx.AsyncClient, alice: Headers) -> None:
    body = {"title": "x", "due_at": "2030-01-01T09:00:00"}

    response = await client.post("/todos", json=body, headers=alice)

    assert error_locations(assert_rejected(response)) == [["body", "due_at"]]


async def test_invalid_json_is_422(client: httpx.AsyncClient, alice: Headers) -> None:
    headers = {**alice, "Content-Type": "application/json"}

    response = await client.post("/todos", content=b'{"title": "x",', headers=headers)

    assert assert_rejected(response)["errors"][0]["type"] == "json_invalid"


async def test_body_that_is_not_utf8_is_a_400_problem(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    headers = {**alice, "Content-Type": "application/json"}

    response = await client.post("/todos", content=b'{"title": "\xff"}', headers=headers)

    assert_rejected(response, 400)


async def test_text_plain_body_is_415(client: httpx.AsyncClient, alice: Headers) -> None:
    headers = {**alice, "Content-Type": "text/plain"}

    response = await client.post("/todos", content=b'{"title": "x"}', headers=headers)

    assert_rejected(response, 415)
    assert await list_all(client, alice) == []


async def test_form_body_is_415(client: httpx.AsyncClient, alice: Headers) -> None:
    response = await client.post("/todos", data={"title": "x"}, headers=alice)

    assert_rejected(response, 415)


async def test_body_over_the_limit_is_413(client: httpx.AsyncClient, alice: Headers) -> None:
    body = b'{"title": "x", "description": "' + b"d" * ONE_MIB + b'"}'

    response = await client.post(
        "/todos", content=body, headers={**alice, "Content-Type": "application/json"}
    )

    assert "content-length" in response.request.headers
    assert_rejected(response, 413)


async def test_chunked_body_over_the_limit_is_413(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"title": "x", "description": "'
        for _ in range(17):
            yield b"d" * 65_536  # 17 x 64 KiB > 1 MiB
        yield b'"}'

    response = await client.post(
        "/todos", content=chunks(), headers={**alice, "Content-Type": "application/json"}
    )

    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert_rejected(response, 413)
    assert await list_all(client, alice) == []


async def test_chunked_body_under_the_limit_is_accepted(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"title": '
        yield b'"streamed"}'

    response = await client.post(
        "/todos", content=chunks(), headers={**alice, "Content-Type": "application/json"}
    )

    assert response.status_code == 201
    assert response.json()["title"] == "streamed"
