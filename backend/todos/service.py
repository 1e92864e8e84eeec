"""Use cases that take more than one statement, and so a transaction of their own."""

from fastapi.responses import JSONResponse

from backend.db import Database
from backend.idempotency import IdempotencyStore, fingerprint
from backend.todos.etags import etag_for
from backend.todos.repository import TodoRepository
from backend.todos.schemas import TodoCreate, TodoRead


def location_of(todo: TodoRead) -> str:
    return f"/todos/{todo.id}"


async def create_idempotently(
    database: Database, user_id: str, key: str, data: TodoCreate
) -> JSONResponse:
    """POST /todos with an Idempotency-Key: the todo and the stored response commit together,
    under the key's lock (see backend.idempotency), before the response is sent."""
    request_hash = fingerprint(data.model_dump_json())
    async with database.transaction() as connection:
        store = IdempotencyStore(connection, user_id)
        stored = await store.claim(key, request_hash)
        if stored is None:
            created = TodoRead.model_validate(
                await TodoRepository(connection, user_id).create(data)
            )
            headers = {"Location": location_of(created), "ETag": etag_for(created.version)}
            body = created.model_dump(mode="json")
            await store.save(key, request_hash, 201, body, headers)
            return JSONResponse(body, 201, headers=headers)
    replay_headers = {**stored.response_headers, "Idempotent-Replayed": "true"}
    return JSONResponse(stored.response_body, stored.status_code, headers=replay_headers)
