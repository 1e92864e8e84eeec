"""The baseline of issue 6: what a careful hand-written FastAPI service does for the same five
requests. Every request verifies the Ed25519 JWT with PyJWT, runs one SQL statement through a
raw asyncpg pool (no explicit transaction), and serialises with pydantic-core. Response shapes
follow the API's closely enough that both do the same work per request.

It is a yardstick, not a product: no user provisioning (the benchmark seeds the users), no
problem+json details, no request ids. Run by benchmarks.run, configured by environment:
BASELINE_DATABASE_URL, BASELINE_JWKS_URL, BASELINE_ISSUER, BASELINE_AUDIENCE,
BASELINE_POOL_SIZE, BASELINE_STATEMENT_CACHE_SIZE.
"""

import base64
import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal
from uuid import UUID

import asyncpg
import httpx
import jwt
from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, StringConstraints
from pydantic_core import to_json
from uuid_utils.compat import uuid7

COLUMNS = (
    "id, title, description, completed, completed_at, priority, due_at, created_at, "
    "updated_at, version"
)
# The same statements the API's repository issues, written by hand.
LIST = f"""SELECT {COLUMNS} FROM todo WHERE user_id = $1
ORDER BY created_at DESC, id DESC LIMIT $2"""  # noqa: S608 - only constants are interpolated
LIST_Q = f"""SELECT {COLUMNS} FROM todo
WHERE user_id = $1 AND (title ILIKE $2 OR description ILIKE $2)
ORDER BY created_at DESC, id DESC LIMIT $3"""  # noqa: S608
GET = f"SELECT {COLUMNS} FROM todo WHERE user_id = $1 AND id = $2"  # noqa: S608
CREATE = f"""INSERT INTO todo (id, user_id, title, description, completed, completed_at,
priority, due_at) VALUES ($1, $2, $3, $4, $5, CASE WHEN $5 THEN now() END, $6, $7)
RETURNING {COLUMNS}"""  # noqa: S608
EXISTS = "SELECT 1 FROM todo WHERE user_id = $1 AND id = $2"


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    env = os.environ
    async with httpx.AsyncClient() as client:
        jwks = (await client.get(env["BASELINE_JWKS_URL"])).raise_for_status().json()
    app.state.keys = {jwk["kid"]: jwt.PyJWK(jwk, algorithm="EdDSA").key for jwk in jwks["keys"]}
    app.state.issuer = env.get("BASELINE_ISSUER")
    app.state.audience = env.get("BASELINE_AUDIENCE")
    size = int(env.get("BASELINE_POOL_SIZE", "20"))
    async with asyncpg.create_pool(
        env["BASELINE_DATABASE_URL"],
        min_size=size,
        max_size=size,
        statement_cache_size=int(env.get("BASELINE_STATEMENT_CACHE_SIZE", "0")),
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


def todo_json(row: asyncpg.Record, status: int = 200) -> Response:
    return json(dict(row), status, {"ETag": f'"{row["version"]}"'})


@app.get("/healthz")
async def healthz() -> Response:
    return json({"status": "ok"})


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
        pattern = "%" + re.sub(r"([\\%_])", r"\\\1", q) + "%"
        rows = await pool.fetch(LIST_Q, user_id, pattern, limit + 1)
    items = [dict(row) for row in rows[:limit]]
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
        CREATE,
        uuid7(),  # the API's ids: time-ordered UUIDv7
        user_id,
        data.title,
        data.description,
        data.completed,
        data.priority,
        data.due_at,
    )
    response = todo_json(row, 201)
    response.headers["Location"] = f"/todos/{row['id']}"
    return response


_STRONG_ETAG = re.compile(r'^\s*"(\d{1,10})"\s*$')


@app.patch("/todos/{todo_id}")
async def update_todo(
    request: Request,
    todo_id: UUID,
    changes: TodoChanges,
    user_id: UserId,
    if_match: Annotated[str | None, Header()] = None,
) -> Response:
    values: dict[str, Any] = changes.model_dump(exclude_unset=True)
    expected = None
    if if_match is not None and if_match.strip() != "*":
        match = _STRONG_ETAG.match(if_match)
        expected = int(match.group(1)) if match else 0  # 0 matches no version
    # One statement: apply the changes only if the version still matches.
    params: list[Any] = [user_id, todo_id, expected]
    sets = ["version = version + 1", "updated_at = now()"]
    for name, value in values.items():
        params.append(value)
        sets.append(f"{name} = ${len(params)}")
        if name == "completed":  # keep the first completion time; reopening clears it
            completed = f"${len(params)}"
            sets.append(
                f"completed_at = CASE WHEN {completed} THEN coalesce(completed_at, now()) END"
            )
    # Only column names from TodoChanges are interpolated; values are parameters.
    where = "WHERE user_id = $1 AND id = $2 AND ($3::int IS NULL OR version = $3)"
    statement = f"UPDATE todo SET {', '.join(sets)} {where} RETURNING {COLUMNS}"  # noqa: S608
    pool: asyncpg.Pool = request.app.state.pool
    row = await pool.fetchrow(statement, *params)
    if row is None:
        found = await pool.fetchval(EXISTS, user_id, todo_id)
        raise HTTPException(412 if found else 404)
    return todo_json(row)
