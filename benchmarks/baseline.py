"""The baseline: what a careful hand-written FastAPI service does for the benchmark's five
requests. Every request verifies the Ed25519 JWT with PyJWT, runs the same SQL as the API
through a raw asyncpg pool, and serialises with pydantic-core. No explicit transaction, except
where the API has one: after a completion that matched nothing. Response shapes follow the
API's (every field, `tags` a list of names) so that both do the same work per request.

It is a yardstick, not a product: no user provisioning (the benchmark seeds the users), no
problem+json details, no request ids, POST takes only the fields the benchmark sends (no tags,
reminder or recurrence), and PATCH only does what the benchmark sends (`{"completed": ...}`
with If-Match; the completion of a recurring todo, which the seed has none of, is a 501).
Run by benchmarks.run, configured by environment: BASELINE_DATABASE_URL, BASELINE_JWKS_URL,
BASELINE_ISSUER, BASELINE_AUDIENCE, BASELINE_POOL_SIZE, BASELINE_STATEMENT_CACHE_SIZE.
"""

import base64
import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal, NoReturn
from uuid import UUID

import asyncpg
import httpx
import jwt
from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, StringConstraints
from pydantic_core import to_json
from uuid_utils.compat import uuid7

# The exact SQL the API executes (backend.todos.statements, compiled by SQLAlchemy), copied
# here so that the baseline stays independent of `backend`: same text, so PostgreSQL plans it
# and asyncpg caches it alike. tests/test_benchmark_baseline.py fails when the copies drift.
# Each comment gives the order of the statement's parameters.

# A todo's tags: the names of the tags linked to it, sorted ignoring case, aggregated in the
# statement that reads or writes the todo (one round trip, as in the API).
_TAGS = (
    "coalesce((SELECT array_agg(tag.name ORDER BY lower(tag.name), tag.name) AS array_agg_1 \n"
    "FROM todo_tag JOIN tag ON tag.id = todo_tag.tag_id \n"
    "WHERE todo_tag.todo_id = todo.id), '{}'::text[]) AS coalesce_1"
)
# The columns of a todo as the API answers with it, `tags` among them.
_RETURNED = (
    "todo.id, todo.title, todo.description, todo.completed, todo.completed_at, "
    f"todo.priority, todo.due_at, todo.remind_at, todo.recurrence, todo.time_zone, {_TAGS}, "
    "todo.next_id, todo.previous_id, todo.created_at, todo.updated_at, todo.version"
)
# The names of those columns, in order: the fields of each todo in the JSON.
COLUMNS = (
    *("id", "title", "description", "completed", "completed_at", "priority", "due_at"),
    *("remind_at", "recurrence", "time_zone", "tags", "next_id", "previous_id"),
    *("created_at", "updated_at", "version"),
)
_VERSION = COLUMNS.index("version")


# Every write takes the user's next change number first, in the same statement (the API's
# change log, backend.sync.stamping): the CTE that advances the counter of the user `$n`...
def _advanced(user: str) -> str:
    return (
        "WITH advanced AS \n(INSERT INTO change_counter (user_id, last_seq) VALUES "
        f"({user}::VARCHAR, 1) ON CONFLICT (user_id) DO UPDATE SET last_seq = "
        "(change_counter.last_seq + 1) RETURNING change_counter.last_seq AS seq)\n "
    )


# ...the new number, and the condition that takes it before any row is read.
_SEQ = "(SELECT advanced.seq \nFROM advanced)"
_ADVANCED_FIRST = f"{_SEQ} IS NOT NULL"

# $1 user_id, $2 todo_id
GET = f"SELECT {_RETURNED} \nFROM todo \nWHERE todo.user_id = $1::VARCHAR AND todo.id = $2::UUID"
# $1 user_id, $2 limit (one more than the page size: is there a next page?)
LIST = (
    f"SELECT {_RETURNED} \n"
    "FROM todo \n"
    "WHERE todo.user_id = $1::VARCHAR ORDER BY todo.created_at DESC, todo.id DESC \n"
    " LIMIT $2"
)
# $1 user_id, $2 ILIKE pattern of q (contains_pattern), $3 limit
LIST_Q = (
    f"SELECT {_RETURNED} \n"
    "FROM todo \n"
    "WHERE todo.user_id = $1::VARCHAR AND (todo.title ILIKE $2::VARCHAR OR todo.description "
    "ILIKE $2::VARCHAR) ORDER BY todo.created_at DESC, todo.id DESC \n"
    " LIMIT $3"
)
# $1 id, $2 user_id, $3 title, $4 description, $5 completed, $6 priority, $7 due_at,
# $8 recurrence, $9 time_zone, $10 remind_at, $11 previous_id (a new todo has no tags yet)
INSERT = (
    f"{_advanced('$2')}INSERT INTO todo (id, user_id, title, description, completed, "
    "completed_at, priority, due_at, recurrence, time_zone, remind_at, previous_id, change_seq) "
    "VALUES ($1::UUID, $2::VARCHAR, $3::VARCHAR, $4::VARCHAR, $5::BOOLEAN, CASE WHEN $5 THEN "
    "now() END, $6::todo_priority, $7::TIMESTAMP WITH TIME ZONE, $8::VARCHAR, $9::VARCHAR, "
    f"$10::TIMESTAMP WITH TIME ZONE, $11::UUID, {_SEQ}) RETURNING todo.id, todo.title, "
    "todo.description, todo.completed, todo.completed_at, todo.priority, todo.due_at, "
    "todo.remind_at, todo.recurrence, todo.time_zone, '{}'::text[], todo.next_id, "
    "todo.previous_id, todo.created_at, todo.updated_at, todo.version"
)
_SET_COMPLETED = (
    f"{_advanced('$2')}UPDATE todo SET completed=$1::BOOLEAN, completed_at=CASE WHEN $1 THEN "
    "coalesce(todo.completed_at, now()) END, updated_at=now(), version=(todo.version + 1), "
    f"change_seq={_SEQ} WHERE todo.user_id = $2::VARCHAR AND todo.id = $3::UUID AND "
    f"todo.version = ANY ($4::INTEGER[]) AND {_ADVANCED_FIRST}"
)
# $1 completed (true), $2 user_id, $3 todo_id, $4 versions (If-Match): the check and the
# write in one, for {"completed": true}. The API writes a completion in one statement only if
# it cannot spawn a successor (not a recurring todo's first completion); when this matches
# nothing, it takes its locked path (LOCK), which tells 412, 404 and a recurring todo apart.
UPDATE_COMPLETED = (
    f"{_SET_COMPLETED} AND (todo.recurrence IS NULL OR todo.completed OR todo.next_id IS NOT "
    f"NULL) RETURNING {_RETURNED}"
)
# $1 completed (false), $2 user_id, $3 todo_id, $4 versions: {"completed": false}, which can
# spawn nothing; when it matches nothing, EXISTS tells 412 from 404.
UPDATE_REOPENED = f"{_SET_COMPLETED} RETURNING {_RETURNED}"
# $1 user_id, $2 todo_id: after a guarded write matched nothing, 412 or 404?
EXISTS = (
    "SELECT EXISTS (SELECT * \n"
    "FROM todo \n"
    "WHERE todo.user_id = $1::VARCHAR AND todo.id = $2::UUID) AS anon_1"
)
# $1 user_id, $2 todo_id: the todo, locked until the transaction ends (the API's path for a
# completion that UPDATE_COMPLETED did not write).
LOCK = f"{_advanced('$1')}{GET} AND {_ADVANCED_FIRST} FOR UPDATE OF todo"


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    env = os.environ
    async with httpx.AsyncClient() as client:
        jwks = (await client.get(env["BASELINE_JWKS_URL"])).raise_for_status().json()
    app.state.keys = {jwk["kid"]: jwt.PyJWK(jwk, algorithm="EdDSA").key for jwk in jwks["keys"]}
    app.state.issuer = env.get("BASELINE_ISSUER")
    app.state.audience = env.get("BASELINE_AUDIENCE")
    # No defaults of its own: the harness always passes the API's pool size and cache size.
    size = int(env["BASELINE_POOL_SIZE"])
    async with asyncpg.create_pool(
        env["BASELINE_DATABASE_URL"],
        min_size=size,
        max_size=size,
        statement_cache_size=int(env["BASELINE_STATEMENT_CACHE_SIZE"]),
    ) as pool:
        app.state.pool = pool
        yield


app = FastAPI(lifespan=lifespan, openapi_url=None)


def unauthorized() -> HTTPException:
    return HTTPException(401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


async def current_user_id(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise unauthorized()
    state = request.app.state
    try:
        key = state.keys[jwt.get_unverified_header(token).get("kid")]
        claims = jwt.decode(
            token,
            key,
            algorithms=["EdDSA"],
            issuer=state.issuer,
            audience=state.audience,
            leeway=30,
            options={"require": ["exp", "sub"]},
        )
    except (jwt.InvalidTokenError, KeyError):
        raise unauthorized() from None
    return str(claims["sub"])


UserId = Annotated[str, Depends(current_user_id)]


def json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(to_json(body), status, headers, media_type="application/json")


def todo_dict(row: asyncpg.Record) -> dict[str, Any]:
    """A row of the statements above as the API's JSON object (`tags` a list of names)."""
    return dict(zip(COLUMNS, row, strict=True))


def todo_json(row: asyncpg.Record, status: int = 200) -> Response:
    return json(todo_dict(row), status, {"ETag": f'"{row[_VERSION]}"'})


@app.get("/healthz")
async def healthz() -> Response:
    return json({"status": "ok"})


_LIKE_SPECIALS = re.compile(r"([\\%_])")


def contains_pattern(text: str) -> str:
    """The API's ILIKE pattern: `text` anywhere, with `\\`, `%` and `_` escaped by `\\`."""
    return "%" + _LIKE_SPECIALS.sub(r"\\\1", text) + "%"


@app.get("/todos")
async def list_todos(
    request: Request,
    user_id: UserId,
    q: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Response:
    pool: asyncpg.Pool = request.app.state.pool
    if q is None:
        rows = await pool.fetch(LIST, user_id, limit + 1)
    else:
        rows = await pool.fetch(LIST_Q, user_id, contains_pattern(q), limit + 1)
    items = [todo_dict(row) for row in rows[:limit]]
    cursor = None
    if len(rows) > limit:  # the API's cursor is opaque too; this one carries the same data
        last = items[-1]
        position = to_json({"sort": "-created_at", "id": last["id"], "key": last["created_at"]})
        cursor = base64.urlsafe_b64encode(position).decode().rstrip("=")
    return json({"items": items, "next_cursor": cursor})


@app.get("/todos/{todo_id}")
async def get_todo(request: Request, todo_id: UUID, user_id: UserId) -> Response:
    row = await request.app.state.pool.fetchrow(GET, user_id, todo_id)
    if row is None:
        raise HTTPException(404)
    return todo_json(row)


Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
Description = Annotated[str, StringConstraints(max_length=10_000)]
Priority = Literal["low", "medium", "high"]


class TodoIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title
    description: Description | None = None
    completed: bool = False
    priority: Priority = "medium"
    due_at: AwareDatetime | None = None


class TodoChanges(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title | None = None
    description: Description | None = None
    completed: bool | None = None
    priority: Priority | None = None
    due_at: AwareDatetime | None = None


@app.post("/todos", status_code=201)
async def create_todo(request: Request, data: TodoIn, user_id: UserId) -> Response:
    row = await request.app.state.pool.fetchrow(
        INSERT,
        uuid7(),  # the API's ids: time-ordered UUIDv7
        user_id,
        data.title,
        data.description,
        data.completed,
        data.priority,
        data.due_at,
        None,  # recurrence: the benchmark sets none of these four
        "UTC",  # time_zone, the API's default
        None,  # remind_at
        None,  # previous_id
    )
    response = todo_json(row, 201)
    response.headers["Location"] = f"/todos/{row[0]}"
    return response


_STRONG_ETAG = re.compile(r'^\s*"(\d{1,10})"\s*$')
_MAX_VERSION = 2**31 - 1  # the version column is an INTEGER


def expected_versions(if_match: str) -> list[int]:
    """The version a single strong ETag names; [0] (no todo has it) for anything else."""
    match = _STRONG_ETAG.match(if_match)
    version = int(match.group(1)) if match else 0
    return [version if version <= _MAX_VERSION else 0]


@app.patch("/todos/{todo_id}")
async def update_todo(
    request: Request,
    todo_id: UUID,
    changes: TodoChanges,
    user_id: UserId,
    if_match: Annotated[str | None, Header()] = None,
) -> Response:
    # The benchmark's PATCH only: the full model is parsed (as the API parses its own), but
    # any other change would need SQL the baseline does not have.
    if changes.model_fields_set != {"completed"} or changes.completed is None:
        raise HTTPException(422, "the baseline only patches `completed`")
    if if_match is None:
        raise HTTPException(428, "the baseline needs If-Match")
    pool: asyncpg.Pool = request.app.state.pool
    versions = expected_versions(if_match)
    if changes.completed:
        row = await pool.fetchrow(UPDATE_COMPLETED, True, user_id, todo_id, versions)
        if row is None:
            await completion_not_written(pool, user_id, todo_id, versions)
    else:
        row = await pool.fetchrow(UPDATE_REOPENED, False, user_id, todo_id, versions)
        if row is None:
            found = await pool.fetchval(EXISTS, user_id, todo_id)
            raise HTTPException(412 if found else 404)
    return todo_json(row)


async def completion_not_written(
    pool: asyncpg.Pool, user_id: str, todo_id: UUID, versions: list[int]
) -> NoReturn:
    """UPDATE_COMPLETED matched nothing: the API's locked path, as far as the baseline goes.
    It locks the todo in a transaction: not there (404), at another version (412), or a
    recurring todo's first completion, whose successor the baseline does not spawn (501)."""
    async with pool.acquire() as connection, connection.transaction():
        current = await connection.fetchrow(LOCK, user_id, todo_id)
        if current is None:  # raised inside: rolled back, as the API does
            raise HTTPException(404)
        if current[_VERSION] not in versions:
            raise HTTPException(412)
    raise HTTPException(501, "the baseline does not spawn successors of recurring todos")
