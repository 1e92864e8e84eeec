"""HTTP endpoints for /todos: parse, call the repository for the current user, shape the
response. Each function reads like its row in SPEC §5."""

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Query, Response

from backend.auth.dependencies import CurrentUser
from backend.db import ConnectionDep, DatabaseDep
from backend.errors import UnprocessableContent
from backend.idempotency import KEY_HEADER_PATTERN, parse_key
from backend.openapi import AUTH_RESPONSES, ResponseSpec, problem
from backend.todos.etags import ETAG_HEADER, etag_for, parse_if_match
from backend.todos.pagination import SortOrder, decode_cursor, encode_cursor
from backend.todos.repository import TodoRepository
from backend.todos.schemas import (
    DeletedCount,
    TodoCreate,
    TodoListQuery,
    TodoPage,
    TodoRead,
    TodoStats,
    TodoUpdate,
)
from backend.todos.service import create_idempotently, location_of

router = APIRouter(
    prefix="/todos",
    tags=["todos"],
    responses={**AUTH_RESPONSES, 422: problem("The request is invalid.")},
)

NOT_FOUND: ResponseSpec = {404: problem("No todo with this id (or it belongs to someone else).")}
STALE: ResponseSpec = {412: problem("If-Match does not match the todo's current ETag.")}
IF_MATCH_DOC = "The ETag of the version this change is based on; `*` for any."
IDEMPOTENCY_KEY_DOC = "Makes the POST safe to retry: same key and body, same response (24 h)."


async def todo_repository(user: CurrentUser, connection: ConnectionDep) -> TodoRepository:
    return TodoRepository(connection, user.id)


Todos = Annotated[TodoRepository, Depends(todo_repository)]
IfMatch = Annotated[str | None, Header(description=IF_MATCH_DOC, max_length=1024)]


def _with_etag(todo: TodoRead, response: Response) -> TodoRead:
    response.headers["ETag"] = etag_for(todo.version)
    return todo


@router.get("", operation_id="listTodos", summary="List your todos, one page at a time")
async def list_todos(todos: Todos, query: Annotated[TodoListQuery, Query()]) -> TodoPage:
    order = SortOrder.parse(query.sort)
    after = decode_cursor(order, query.cursor) if query.cursor else None
    rows = await todos.page(query, order, after)
    items = rows[: query.limit]
    has_more = len(rows) > query.limit
    return TodoPage(
        items=[TodoRead.model_validate(row) for row in items],
        next_cursor=encode_cursor(order, items[-1]) if has_more else None,
    )


CREATED_HEADERS: dict[str, Any] = {
    "Location": {
        "description": "The new todo's URL.",
        "required": True,
        "schema": {"type": "string"},
    },
    **ETAG_HEADER,
    "Idempotent-Replayed": {
        "description": "`true` when this is the stored response to an earlier request.",
        "schema": {"type": "string", "enum": ["true"]},
    },
}


@router.post(
    "",
    status_code=201,
    operation_id="createTodo",
    summary="Create a todo",
    # Declared because the handler may return a stored JSONResponse (a replay); without it
    # the 201 was documented with an empty schema.
    response_model=TodoRead,
    responses={
        201: {"headers": CREATED_HEADERS},
        409: problem("A request with this Idempotency-Key is still being processed."),
    },
)
async def create_todo(
    data: TodoCreate,
    response: Response,
    user: CurrentUser,
    database: DatabaseDep,
    idempotency_key: Annotated[
        str | None, Header(description=IDEMPOTENCY_KEY_DOC, pattern=KEY_HEADER_PATTERN)
    ] = None,
) -> Any:
    if idempotency_key is not None:
        return await create_idempotently(database, user.id, parse_key(idempotency_key), data)
    # Not a ConnectionDep: the idempotent branch above takes a transaction of its own.
    async with database.connection() as connection:
        created = TodoRead.model_validate(await TodoRepository(connection, user.id).create(data))
    response.headers["Location"] = location_of(created)
    return _with_etag(created, response)


@router.delete(
    "",
    operation_id="deleteCompletedTodos",
    summary="Delete all your completed todos",
)
async def delete_completed(
    todos: Todos,
    completed: Annotated[bool, Query(description="Must be `true`.")],
) -> DeletedCount:
    if not completed:
        raise UnprocessableContent("Only completed=true is supported: it clears completed todos.")
    return DeletedCount(deleted=await todos.delete_completed())


@router.get("/stats", operation_id="getTodoStats", summary="Counts of your todos")
async def stats(todos: Todos) -> TodoStats:
    return await todos.stats()


@router.get(
    "/{todo_id}",
    operation_id="getTodo",
    summary="One todo",
    responses={**NOT_FOUND, 200: {"headers": ETAG_HEADER}},
)
async def get_todo(todo_id: UUID, todos: Todos, response: Response) -> TodoRead:
    return _with_etag(TodoRead.model_validate(await todos.get(todo_id)), response)


@router.patch(
    "/{todo_id}",
    operation_id="updateTodo",
    summary="Change some fields of a todo",
    responses={**NOT_FOUND, **STALE, 200: {"headers": ETAG_HEADER}},
)
async def update_todo(
    todo_id: UUID, changes: TodoUpdate, todos: Todos, response: Response, if_match: IfMatch = None
) -> TodoRead:
    updated = await todos.update(todo_id, changes.changes(), parse_if_match(if_match))
    return _with_etag(TodoRead.model_validate(updated), response)


@router.delete(
    "/{todo_id}",
    status_code=204,
    operation_id="deleteTodo",
    summary="Delete a todo",
    responses={**NOT_FOUND, **STALE},
)
async def delete_todo(todo_id: UUID, todos: Todos, if_match: IfMatch = None) -> Response:
    await todos.delete(todo_id, parse_if_match(if_match))
    return Response(status_code=204)
