"""The benchmark's baseline (benchmarks/baseline.py) must run exactly the API's SQL, or the
comparison measures different queries. It keeps its own copy of the text (it must not import
`backend`); these tests fail as soon as the copy and the API's compiled statements differ, in
text or in the order of the parameters the baseline passes. No database needed."""

import time
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from backend.sql import Statement
from backend.todos import statements
from backend.todos.repository import contains_pattern
from benchmarks import baseline

GUARDED_COMPLETED = statements.update_one(frozenset({"completed"}), guarded=True)
API_STATEMENTS = {
    "GET": statements.GET,
    "LIST": statements.page(frozenset(), "-created_at", None),
    "LIST_Q": statements.page(frozenset({"text"}), "-created_at", None),
    "INSERT": statements.INSERT,
    "UPDATE_COMPLETED": GUARDED_COMPLETED,
    "EXISTS": statements.EXISTS,
}


@pytest.mark.parametrize("name", API_STATEMENTS)
def test_baseline_sql_is_the_apis(name: str) -> None:
    assert getattr(baseline, name) == API_STATEMENTS[name].sql


@pytest.mark.parametrize("text", ["report", "100%", "snake_case", "back\\slash", "ANNA"])
def test_baseline_search_pattern_is_the_apis(text: str) -> None:
    assert baseline.contains_pattern(text) == contains_pattern(text)


class RecordingPool:
    """Stands in for the asyncpg pool: records each call and answers with `answers`."""

    def __init__(self, *answers: Any) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self._answers = list(answers)

    async def _call(self, sql: str, *args: Any) -> Any:
        self.calls.append((sql, args))
        return self._answers.pop(0)

    fetch = fetchrow = fetchval = _call


USER = "u" * 32
TODO = uuid4()
ROW = {
    "id": TODO,
    "title": "Buy oat milk",
    "description": None,
    "completed": True,
    "completed_at": None,
    "priority": "high",
    "due_at": None,
    "created_at": datetime(2030, 1, 1, tzinfo=UTC),
    "updated_at": datetime(2030, 1, 1, tzinfo=UTC),
    "version": 4,
}


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


async def executed(
    client: httpx.AsyncClient, pool: RecordingPool, method: str, url: str, **kwargs: Any
) -> tuple[httpx.Response, list[tuple[str, tuple[Any, ...]]]]:
    baseline.app.state.pool = pool
    async with client:
        response = await client.request(method, url, **kwargs)
    return response, pool.calls


def api_call(statement: Statement, **values: Any) -> tuple[str, tuple[Any, ...]]:
    return statement.sql, statement.args(**values)


async def test_list_runs_the_apis_statement(client: httpx.AsyncClient) -> None:
    response, calls = await executed(client, RecordingPool([]), "GET", "/todos")
    assert response.status_code == 200
    assert calls == [api_call(API_STATEMENTS["LIST"], user_id=USER, limit=21)]


async def test_list_with_q_runs_the_apis_statement(client: httpx.AsyncClient) -> None:
    response, calls = await executed(
        client, RecordingPool([]), "GET", "/todos", params={"q": "5_%"}
    )
    assert response.status_code == 200
    expected = api_call(
        API_STATEMENTS["LIST_Q"], user_id=USER, text=contains_pattern("5_%"), limit=21
    )
    assert calls == [expected]


async def test_get_runs_the_apis_statement(client: httpx.AsyncClient) -> None:
    response, calls = await executed(client, RecordingPool(ROW), "GET", f"/todos/{TODO}")
    assert response.status_code == 200
    assert calls == [api_call(statements.GET, user_id=USER, todo_id=TODO)]


async def test_create_runs_the_apis_statement(client: httpx.AsyncClient) -> None:
    body = {"title": "Buy oat milk", "priority": "high", "due_at": "2030-01-02T09:00:00Z"}
    response, calls = await executed(client, RecordingPool(ROW), "POST", "/todos", json=body)
    assert response.status_code == 201
    [(sql, args)] = calls
    new_id = args[0]  # a fresh UUIDv7, as the API makes
    assert isinstance(new_id, UUID)
    assert new_id.version == 7
    due = datetime(2030, 1, 2, 9, tzinfo=UTC)
    assert (sql, args) == api_call(
        statements.INSERT,
        id=new_id,
        user_id=USER,
        title="Buy oat milk",
        description=None,
        completed=False,
        priority="high",
        due_at=due,
    )


async def test_patch_with_stale_if_match_runs_the_apis_statements(
    client: httpx.AsyncClient,
) -> None:
    pool = RecordingPool(None, True)  # the guarded write matches nothing; the todo exists
    headers = {"If-Match": '"3"'}
    url = f"/todos/{TODO}"
    response, calls = await executed(
        client, pool, "PATCH", url, json={"completed": True}, headers=headers
    )
    assert response.status_code == 412
    assert calls == [
        api_call(GUARDED_COMPLETED, completed=True, user_id=USER, todo_id=TODO, versions=[3]),
        api_call(statements.EXISTS, user_id=USER, todo_id=TODO),
    ]
