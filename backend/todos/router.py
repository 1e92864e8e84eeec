"""HTTP endpoints for /todos: parse the request, call one TodoService method for the caller,
turn the record it returns into a response. Each function reads like its row in the API
table of the README."""

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Query, Request
from starlette.convertors import Convertor, register_url_convertor
from starlette.responses import Response

from backend.db import Database
from backend.errors import UnprocessableContent
from backend.idempotency import KEY_HEADER_PATTERN, fingerprint, parse_key
from backend.openapi import AUTH_RESPONSES, ResponseSpec, problem
from backend.query import parse_query, query_parameters
from backend.responses import json_response
from backend.todos.etags import ETAG_HEADER, etag_for, parse_if_match
from backend.todos.pagination import SortOrder
from backend.todos.records import TodoRecord
from backend.todos.schemas import (
    DeletedCount,
    TodoCreate,
    TodoListQuery,
    TodoPage,
    TodoRead,
    TodoStats,
    TodoUpdate,
)
from backend.todos.service import IdempotencyKey, TodoService
from backend.users.dependencies import current_user


class TodoIdConvertor(Convertor[str]):
    """A todo id in a path: any segment but the names of /todos' own sub-resources (stats,
    changes), so that `PATCH /todos/stats` is a 405 (that path has no PATCH) rather than a
    422 from parsing "stats" as an id. A malformed id still reaches validation: 422."""

    regex = "(?!(stats|changes)$)[^/]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("todo_id", TodoIdConvertor())

router = APIRouter(
    prefix="/todos",
    tags=["todos"],
    responses={**AUTH_RESPONSES, 422: problem("The request is invalid.")},
)

NOT_FOUND: ResponseSpec = {404: problem("No todo with this id (or it belongs to someone else).")}
STALE: ResponseSpec = {412: problem("If-Match does not match the todo's current ETag.")}
IF_MATCH_DOC = "The ETag of the version this change is based on; `*` for any."
IDEMPOTENCY_KEY_DOC = "Makes the POST safe to retry: same key and body, same response (24 h)."
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


async def todo_service(request: Request) -> TodoService:
    """The caller's todos. Authenticates by calling `current_user` itself: one dependency
    per request instead of a chain of two (FastAPI resolves each level on every request)."""
    user = await current_user(request)
    database: Database = request.app.state.db
    return TodoService(database, user.id, request.app.state.events.changed)


Todos = Annotated[TodoService, Depends(todo_service)]
IfMatch = Annotated[str | None, Header(description=IF_MATCH_DOC, max_length=1024)]


def todo_response(todo: TodoRecord, status_code: int = 200, **headers: str) -> Response:
    return json_response(todo, status_code, {"ETag": etag_for(todo.version), **headers})


@router.get(
    "",
    operation_id="listTodos",
    summary="List your todos, one page at a time",
    response_model=TodoPage,
    openapi_extra={"parameters": query_parameters(TodoListQuery)},
)
async def list_todos(request: Request, todos: Todos) -> Any:
    query = parse_query(TodoListQuery, request.query_params)
    order = SortOrder.parse(query.sort)
    return json_response(await todos.list(query.to_filter(), order, query.limit, query.cursor))


@router.post(
    "",
    status_code=201,
    operation_id="createTodo",
    summary="Create a todo",
    response_model=TodoRead,
    responses={
        201: {"headers": CREATED_HEADERS},
        409: problem("A request with this Idempotency-Key is still being processed."),
    },
)
async def create_todo(
    data: TodoCreate,
    todos: Todos,
    idempotency_key: Annotated[
        str | None, Header(description=IDEMPOTENCY_KEY_DOC, pattern=KEY_HEADER_PATTERN)
    ] = None,
) -> Any:
    key = None
    if idempotency_key is not None:
        key = IdempotencyKey(parse_key(idempotency_key), fingerprint(data.model_dump_json()))
    created = await todos.create(data.to_record(), key)
    headers = {"Location": f"/todos/{created.todo.id}"}
    if created.replayed:
        headers["Idempotent-Replayed"] = "true"
    return todo_response(created.todo, 201, **headers)


@router.delete(
    "",
    operation_id="deleteCompletedTodos",
    summary="Delete all your completed todos",
    response_model=DeletedCount,
)
async def delete_completed(
    todos: Todos,
    completed: Annotated[
        bool, Query(description="Must be `true`.", json_schema_extra={"enum": [True]})
    ],
) -> Any:
    if not completed:
        raise UnprocessableContent("Only completed=true is supported: it clears completed todos.")
    return json_response({"deleted": await todos.clear_completed()})


@router.get(
    "/stats",
    operation_id="getTodoStats",
    summary="Counts of your todos",
    response_model=TodoStats,
)
async def stats(todos: Todos) -> Any:
    return json_response(await todos.stats())


@router.get(
    "/{todo_id:todo_id}",
    operation_id="getTodo",
    summary="One todo",
    response_model=TodoRead,
    responses={**NOT_FOUND, 200: {"headers": ETAG_HEADER}},
)
async def get_todo(todo_id: UUID, todos: Todos) -> Any:
    return todo_response(await todos.get(todo_id))


@router.patch(
    "/{todo_id:todo_id}",
    operation_id="updateTodo",
    summary="Change some fields of a todo",
    response_model=TodoRead,
    responses={**NOT_FOUND, **STALE, 200: {"headers": ETAG_HEADER}},
)
async def update_todo(
    todo_id: UUID, changes: TodoUpdate, todos: Todos, if_match: IfMatch = None
) -> Any:
    expected = parse_if_match(if_match)
    return todo_response(await todos.update(todo_id, changes.to_record(), expected))


@router.delete(
    "/{todo_id:todo_id}",
    status_code=204,
    operation_id="deleteTodo",
    summary="Delete a todo",
    responses={**NOT_FOUND, **STALE},
)
async def delete_todo(todo_id: UUID, todos: Todos, if_match: IfMatch = None) -> Response:
    await todos.delete(todo_id, parse_if_match(if_match))
    return Response(status_code=204)
