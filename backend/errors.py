"""RFC 9457 problem details: the one place that turns exceptions into error responses.

Services raise the domain exceptions below; nothing else builds an error response. No stack
trace, SQL or driver message ever reaches a client.
"""

import logging
from http import HTTPStatus
from typing import Any, ClassVar

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from backend.problems import type_uri

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
RETRY_AFTER_SECONDS = "5"


class FieldError(BaseModel):
    loc: list[str | int] = Field(description="Where the error is: body, query, header, path.")
    msg: str
    type: str


class Problem(BaseModel):
    """An `application/problem+json` body (RFC 9457)."""

    type: str = Field(description="A URI identifying the problem type.")
    title: str
    status: int
    detail: str = Field(description="What went wrong, in words meant for the client's developer.")
    errors: list[FieldError] | None = Field(
        default=None, description="For validation problems: one entry per invalid field."
    )


class ProblemError(Exception):
    """A failure a client should hear about; subclasses set the status and type."""

    status: ClassVar[int] = 500
    slug: ClassVar[str] = "internal-error"

    def __init__(self, detail: str | None = None, *, headers: dict[str, str] | None = None):
        super().__init__(detail or self.slug)
        self.detail = detail
        self.headers = headers or {}


class Unauthorized(ProblemError):
    """401 for a bearer token that cannot be used; the detail never says which check failed."""

    status, slug = 401, "invalid-token"

    def __init__(self, detail: str = "The bearer token is invalid or expired.") -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


class NotFound(ProblemError):
    status, slug = 404, "not-found"


class Conflict(ProblemError):
    status, slug = 409, "conflict"


class PreconditionFailed(ProblemError):
    status, slug = 412, "precondition-failed"


class UnprocessableContent(ProblemError):
    status, slug = 422, "unprocessable-content"


class ServiceUnavailable(ProblemError):
    status, slug = 503, "service-unavailable"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, headers={"Retry-After": RETRY_AFTER_SECONDS})


def problem_response(
    status: int,
    *,
    slug: str | None = None,
    detail: str | None = None,
    headers: dict[str, str] | None = None,
    errors: list[FieldError] | None = None,
) -> JSONResponse:
    phrase = HTTPStatus(status).phrase
    problem = Problem(
        type=type_uri(slug or phrase.lower().replace(" ", "-")),
        title=phrase,
        status=status,
        # Every problem carries a detail, even when the raiser gave none.
        detail=detail or phrase,
        errors=errors,
    )
    return JSONResponse(
        problem.model_dump(exclude_none=True),
        status_code=status,
        headers=headers,
        media_type=PROBLEM_JSON,
    )


# A 422 lists at most this many errors, each location part and message cut to this many
# characters: a hostile body (80,000 unknown keys, megabyte-long names) gets a small answer.
MAX_REPORTED_ERRORS = 20
MAX_ERROR_TEXT = 200


def _cut(value: object) -> str | int:
    if isinstance(value, int):
        return value
    text = str(value)
    return text if len(text) <= MAX_ERROR_TEXT else text[: MAX_ERROR_TEXT - 1] + "…"


def _field_errors(exc: RequestValidationError) -> list[FieldError]:
    # Never echo the offending input back: it may be huge, binary or hostile.
    return [
        FieldError(
            loc=[_cut(part) for part in error.get("loc", ())],
            msg=str(_cut(error["msg"])),
            type=error["type"],
        )
        for error in exc.errors()[:MAX_REPORTED_ERRORS]
    ]


def problem_for(exc: ProblemError) -> JSONResponse:
    return problem_response(exc.status, slug=exc.slug, detail=exc.detail, headers=exc.headers)


async def _on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProblemError)
    return problem_for(exc)


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return problem_response(
        422, slug="validation-error", detail="The request is invalid.", errors=_field_errors(exc)
    )


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    # Routing 404/405 and FastAPI's own HTTPExceptions: keep their (string) detail, which is
    # the status phrase unless the raiser said more.
    detail = exc.detail if isinstance(exc.detail, str) else None
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        # Starlette names the methods of the first route that matched the path only; the
        # path's methods are those of every route it matches.
        headers["Allow"] = ", ".join(_allowed_methods(request))
    return problem_response(exc.status_code, detail=detail, headers=headers)


_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def _allowed_methods(request: Request) -> list[str]:
    """The methods some route fully matches for this path (asked the way the router asks:
    routers may nest)."""
    routes = request.app.router.routes
    allowed = []
    for method in _METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] == Match.FULL for route in routes):
            allowed.append(method)
    return allowed


def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    logger.warning("database unavailable: %s", type(exc).__name__)
    return problem_response(
        503,
        slug="service-unavailable",
        detail="The database is unavailable; retry shortly.",
        headers={"Retry-After": RETRY_AFTER_SECONDS},
    )


# SQLSTATE classes meaning "not available right now": 08 connection exception, 53 insufficient
# resources (too many connections, ...), 57P0x shutdown and "cannot connect now" (starting up,
# shutting down, a resuming compute).
_OUTAGE_SQLSTATES = ("08", "53", "57P")
# 26000: a prepared statement the server does not know. Behind a transaction-mode pooler
# without prepared-statement support, that is a configuration error, not a bug of ours.
_UNKNOWN_STATEMENT = "26000"


def is_outage(exc: BaseException) -> bool:
    """Lost or refused connections and timeouts: answered 503, the client may retry.

    InternalClientError is asyncpg finding a connection still busy with an earlier exchange:
    the server killed it (pg_terminate_backend, a failover) and the error arrived while it sat
    idle in the pool, moments before the socket closed. The connection is dropped."""
    outage_classes = (
        OSError,
        TimeoutError,
        asyncpg.ConnectionDoesNotExistError,
        asyncpg.InternalClientError,
    )
    if isinstance(exc, outage_classes):
        return True
    sqlstate = getattr(exc, "sqlstate", None) or ""
    return isinstance(exc, asyncpg.PostgresError) and sqlstate.startswith(_OUTAGE_SQLSTATES)


async def _on_database_error(request: Request, exc: Exception) -> JSONResponse:
    # Anything the database rejects that is not an outage is a bug in this service (500).
    if is_outage(exc):
        return _unavailable(request, exc)
    if getattr(exc, "sqlstate", None) == _UNKNOWN_STATEMENT:
        logger.error(
            "the server lost a prepared statement: behind a transaction-mode pooler without "
            "prepared-statement support (PgBouncer < 1.21), set DB_STATEMENT_CACHE_SIZE=0"
        )
    return await _on_unexpected(request, exc)


async def _on_outage(request: Request, exc: Exception) -> JSONResponse:
    return _unavailable(request, exc)


def internal_error(exc: Exception) -> JSONResponse:
    """Log a bug with its traceback; answer 500 without a word of it."""
    logger.exception("unhandled error", exc_info=exc)
    return problem_response(500, detail="An unexpected error occurred.")


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    return internal_error(exc)


def install_error_handlers(app: FastAPI) -> None:
    handlers: dict[Any, Any] = {
        ProblemError: _on_problem,
        RequestValidationError: _on_validation,
        StarletteHTTPException: _on_http,
        asyncpg.PostgresError: _on_database_error,
        asyncpg.InterfaceError: _on_database_error,
        asyncpg.InternalClientError: _on_database_error,
        OSError: _on_outage,  # connection refused / reset
        TimeoutError: _on_outage,  # no pooled connection in time; connect or statement timeout
        Exception: _on_unexpected,
    }
    for exc_class, handler in handlers.items():
        app.add_exception_handler(exc_class, handler)
