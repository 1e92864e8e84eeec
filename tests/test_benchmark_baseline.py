"""The benchmark's baseline (benchmarks/baseline.py) must run exactly the API's SQL, or the
comparison measures different queries. It keeps its own copy of the text (it must not import
`backend`); these tests fail as soon as the copy and the API's compiled statements differ, in
text or in the order of the parameters the baseline passes, or when the baseline and the API
run other statements (or other transactions) for one of the benchmark's requests, or answer
with other JSON. No database needed: both run against the same recording fake."""

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.datastructures import QueryParams
from uuid_utils.compat import uuid7

import backend.todos.repository
from backend.errors import ProblemError
from backend.query import parse_query
from backend.responses import json_response
from backend.sql import Statement
from backend.todos import statements
from backend.todos.etags import parse_if_match
from backend.todos.pagination import SortOrder
from backend.todos.records import COLUMNS
from backend.todos.repository import contains_pattern
from backend.todos.schemas import TodoCreate, TodoListQuery, TodoUpdate
from backend.todos.service import TodoService
from benchmarks import baseline

# The statements the API runs for the benchmark's requests (see TodoService.update: a
# completion is written with `cannot_spawn`, a reopening without; LOCK after a completion that
# matched nothing).
API_STATEMENTS = {
    "GET": statements.GET,
    "LIST": statements.page(frozenset(), "-created_at", None),
    "LIST_Q": statements.page(frozenset({"text"}), "-created_at", None),
    "INSERT": statements.INSERT,
    "UPDATE_COMPLETED": statements.update_one(
        frozenset({"completed"}), guarded=True, cannot_spawn=True
    ),
    "UPDATE_REOPENED": statements.update_one(frozenset({"completed"}), guarded=True),
    "EXISTS": statements.EXISTS,
    "LOCK": statements.LOCK,
}


@pytest.mark.parametrize("name", API_STATEMENTS)
def test_baseline_sql_is_the_apis(name: str) -> None:
    assert getattr(baseline, name) == API_STATEMENTS[name].sql


def test_baseline_answers_with_the_apis_fields_in_the_statements_order() -> None:
    assert baseline.COLUMNS == COLUMNS


@pytest.mark.parametrize("text", ["report", "100%", "snake_case", "back\\slash", "ANNA"])
def test_baseline_search_pattern_is_the_apis(text: str) -> None:
    assert baseline.contains_pattern(text) == contains_pattern(text)


Call = tuple[str, tuple[Any, ...]]


class Recorder:
    """Stands in for the database of both apps: the asyncpg pool and connection the baseline
    uses, and the API's Database (backend.db). Records each statement with its arguments, and
    transactions as BEGIN and COMMIT (or ROLLBACK); answers with `answers`, in order."""

    def __init__(self, *answers: Any) -> None:
        self.calls: list[Call] = []
        self._answers = list(answers)

    async def _call(self, sql: str, *args: Any) -> Any:
        self.calls.append((sql, args))
        return self._answers.pop(0)

    fetch = fetchrow = fetchval = execute = _call

    @asynccontextmanager
    async def connection(self) -> AsyncIterator["Recorder"]:
        yield self

    acquire = connection

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator["Recorder"]:
        self.calls.append(("BEGIN", ()))
        try:
            yield self
        except BaseException:
            self.calls.append(("ROLLBACK", ()))
            raise
        self.calls.append(("COMMIT", ()))


USER = "u" * 32
TODO = uuid4()
NEW_ID = UUID(str(uuid7()))
T0 = datetime(2030, 1, 1, tzinfo=UTC)


def row(todo_id: UUID = TODO, version: int = 4, tags: list[str] | None = None) -> tuple[Any, ...]:
    """A row of the todo statements, columns in COLUMNS order, as asyncpg returns them."""
    values = {
        "id": todo_id,
        "title": "Buy oat milk",
        "description": None,
        "completed": True,
        "completed_at": T0,
        "priority": "high",
        "due_at": T0,
        "remind_at": None,
        "recurrence": None,
        "time_zone": "UTC",
        "tags": ["errands", "Home"] if tags is None else tags,
        "next_id": None,
        "previous_id": None,
        "created_at": T0,
        "updated_at": T0,
        "version": version,
    }
    return tuple(values[name] for name in COLUMNS)


ROW = row()
ETAG = '"3"'  # what the benchmark's PATCH sends as If-Match


@pytest.fixture
def client() -> httpx.AsyncClient:
    """The baseline app without its lifespan (no JWKS fetch, no pool), with a fresh key and
    a token for USER."""
    key = Ed25519PrivateKey.generate()
    state = baseline.app.state
    state.keys = {"k": key.public_key()}
    state.issuer = state.audience = "http://bench"
    claims = {"sub": USER, "exp": int(time.time()) + 600, "iss": "http://bench"}
    claims["aud"] = "http://bench"
    token = jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": "k"})
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=baseline.app),
        base_url="http://baseline",
        headers={"Authorization": f"Bearer {token}"},
    )


async def baseline_runs(
    client: httpx.AsyncClient, answers: tuple[Any, ...], method: str, url: str, **kwargs: Any
) -> tuple[httpx.Response, list[Call]]:
    recorder = Recorder(*answers)
    baseline.app.state.pool = recorder
    async with client:
        response = await client.request(method, url, **kwargs)
    return response, recorder.calls


async def api_runs(
    use_case: Callable[[TodoService], Awaitable[Any]], answers: tuple[Any, ...]
) -> tuple[int, Any, list[Call]]:
    """What the API's service runs for a use case: status, the answer's JSON, statements."""
    recorder = Recorder(*answers)
    try:
        result = await use_case(TodoService(recorder, USER))  # type: ignore[arg-type]
    except ProblemError as problem:
        return problem.status, None, recorder.calls
    return 200, json.loads(json_response(result).body), recorder.calls


def listing(query: str) -> Callable[[TodoService], Awaitable[Any]]:
    """GET /todos?<query> as the API's router hands it to the service."""
    parsed = parse_query(TodoListQuery, QueryParams(query))
    order = SortOrder.parse(parsed.sort)
    return lambda todos: todos.list(parsed.to_filter(), order, parsed.limit, parsed.cursor)


def patching(body: dict[str, Any]) -> Callable[[TodoService], Awaitable[Any]]:
    """PATCH /todos/TODO with `body` and If-Match ETAG, as the API's router hands it on."""
    changes = TodoUpdate.model_validate(body).to_record()
    return lambda todos: todos.update(TODO, changes, parse_if_match(ETAG))


def api_call(statement: Statement, **values: Any) -> Call:
    return statement.sql, statement.args(**values)


@pytest.mark.parametrize(
    ("query", "statement", "search"),
    [("", "LIST", None), ("q=5_%25", "LIST_Q", "5_%"), ("q=ANNA", "LIST_Q", "ANNA")],
)
async def test_list_runs_the_apis_statement_and_answers_alike(
    client: httpx.AsyncClient, query: str, statement: str, search: str | None
) -> None:
    answers = ([ROW, row(uuid4(), tags=[])],)
    response, calls = await baseline_runs(client, answers, "GET", f"/todos?{query}")
    status, body, api_calls = await api_runs(listing(query), answers)

    assert calls == api_calls
    values = {} if search is None else {"text": contains_pattern(search)}
    assert calls == [api_call(API_STATEMENTS[statement], user_id=USER, limit=21, **values)]
    assert response.status_code == status
    assert response.json() == body


async def test_get_runs_the_apis_statement_and_answers_alike(client: httpx.AsyncClient) -> None:
    response, calls = await baseline_runs(client, (ROW,), "GET", f"/todos/{TODO}")
    status, body, api_calls = await api_runs(lambda todos: todos.get(TODO), (ROW,))

    assert calls == api_calls == [api_call(statements.GET, user_id=USER, todo_id=TODO)]
    assert response.status_code == status
    assert response.json() == body
    assert response.headers["etag"] == '"4"'


async def test_create_runs_the_apis_statement_and_answers_alike(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = {"title": "Buy oat milk", "priority": "high", "due_at": "2030-01-02T09:00:00Z"}
    answers = (row(NEW_ID, version=1, tags=[]),)
    # Both make a fresh UUIDv7 per todo; the same one here, so that the calls compare.
    assert baseline.uuid7 is backend.todos.repository.uuid7
    monkeypatch.setattr(baseline, "uuid7", lambda: NEW_ID)
    monkeypatch.setattr(backend.todos.repository, "uuid7", lambda: NEW_ID)
    new = TodoCreate.model_validate(body).to_record()

    response, calls = await baseline_runs(client, answers, "POST", "/todos", json=body)
    _, api_body, api_calls = await api_runs(lambda todos: todos.create(new), answers)

    assert calls == api_calls
    assert calls == [
        api_call(
            statements.INSERT,
            id=NEW_ID,
            user_id=USER,
            title="Buy oat milk",
            description=None,
            completed=False,
            priority="high",
            due_at=datetime(2030, 1, 2, 9, tzinfo=UTC),
            recurrence=None,
            time_zone="UTC",
            remind_at=None,
            previous_id=None,
        )
    ]
    assert response.status_code == 201
    assert response.json() == api_body["todo"]
    assert response.headers["location"] == f"/todos/{NEW_ID}"


def completing(completed: bool) -> Call:
    name = "UPDATE_COMPLETED" if completed else "UPDATE_REOPENED"
    values = {"completed": completed, "user_id": USER, "todo_id": TODO, "versions": [3]}
    return api_call(API_STATEMENTS[name], **values)


LOCKED = api_call(statements.LOCK, user_id=USER, todo_id=TODO)
EXISTS = api_call(statements.EXISTS, user_id=USER, todo_id=TODO)
PATCHES = {
    # body, answers of the database: statements, status
    "complete": ({"completed": True}, (ROW,), [completing(True)], 200),
    "reopen": ({"completed": False}, (ROW,), [completing(False)], 200),
    # A completion that matched nothing takes the locked path: the todo is at version 4.
    "complete, stale": (
        {"completed": True},
        (None, ROW),
        [completing(True), ("BEGIN", ()), LOCKED, ("ROLLBACK", ())],
        412,
    ),
    "reopen, stale": ({"completed": False}, (None, True), [completing(False), EXISTS], 412),
}


@pytest.mark.parametrize("case", PATCHES)
async def test_patch_runs_the_apis_statements_and_answers_alike(
    client: httpx.AsyncClient, case: str
) -> None:
    body, answers, expected, expected_status = PATCHES[case]
    url, headers = f"/todos/{TODO}", {"If-Match": ETAG}

    response, calls = await baseline_runs(client, answers, "PATCH", url, json=body, headers=headers)
    status, api_body, api_calls = await api_runs(patching(body), answers)

    assert calls == api_calls == expected
    assert response.status_code == status == expected_status
    if status == 200:
        assert response.json() == api_body


@pytest.mark.parametrize("completed", [True, False])
async def test_patch_of_a_missing_todo_runs_the_apis_statements(
    client: httpx.AsyncClient, completed: bool
) -> None:
    """404: the same statements, but for the API's check that the user still exists, which
    the baseline (no users of its own) leaves out."""
    answers = (None, None, True)  # nothing written; no such todo; the user exists
    body, url, headers = {"completed": completed}, f"/todos/{TODO}", {"If-Match": ETAG}

    response, calls = await baseline_runs(client, answers, "PATCH", url, json=body, headers=headers)
    status, _, api_calls = await api_runs(patching(body), answers)

    assert response.status_code == status == 404
    assert api_calls[: len(calls)] == calls
    assert len(api_calls) == len(calls) + 1  # the user check
