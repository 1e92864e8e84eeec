"""Liveness and readiness probes (no authentication)."""

from fastapi import APIRouter, Request

from backend.db import Database
from backend.errors import ServiceUnavailable
from backend.migrations import schema_is_current
from backend.openapi import RETRY_AFTER, problem
from backend.shutdown import Drain

router = APIRouter(tags=["health"])


@router.get("/healthz", operation_id="getLiveness", summary="The process is alive")
async def liveness() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    operation_id="getReadiness",
    summary="The database is reachable and its schema is at the latest migration",
    responses={
        503: problem(
            "Not ready: shutting down, database unreachable or migrations pending.", RETRY_AFTER
        )
    },
)
async def readiness(request: Request) -> dict[str, str]:
    drain: Drain = request.app.state.drain
    if drain.draining:
        raise ServiceUnavailable("Shutting down; send requests to another instance.")
    database: Database = request.app.state.db
    async with database.connection() as connection:
        current = await schema_is_current(connection)
    if not current:
        raise ServiceUnavailable("Database migrations are pending; run `todo-api migrate`.")
    return {"status": "ready"}
