"""RFC 9457 problem details: the one place that turns exceptions into error responses.

Services raise the domain exceptions below; nothing else builds an error response. No stack
trace, SQL or driver message ever reaches a client.
"""

import logging
from http import HTTPStatus
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPE_BASE = "urn:todo-api:problem:"
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


class NotFound(ProblemError):
    status, slug = 404, "not-found"


class Conflict(ProblemError):
    status, slug = 409, "conflict"


class PreconditionFailed(ProblemError):
    status, slug = 412, "precondition-failed"


class PayloadTooLarge(ProblemError):
    status, slug = 413, "payload-too-large"


class UnsupportedMediaType(ProblemError):
    status, slug = 415, "unsupported-media-type"


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
        type=PROBLEM_TYPE_BASE + (slug or phrase.lower().replace(" ", "-")),
        title=phrase,
        status=status,
        # Every problem carries a detail (SPEC §5), even when the raiser gave none.
        detail=detail or phrase,
        errors=errors,
    )
    return JSONResponse(
        problem.model_dump(exclude_none=True),
        status_code=status,
        headers=headers,
        media_type=PROBLEM_JSON,
    )


def _field_errors(exc: RequestValidationError) -> list[FieldError]:
    # Never echo the offending input back: it may be huge, binary or hostile.
    return [
        FieldError(loc=list(error.get("loc", ())), msg=error["msg"], type=error["type"])
        for error in exc.errors()
    ]


async def _on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProblemError)
    return problem_response(exc.status, slug=exc.slug, detail=exc.detail, headers=exc.headers)


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
    return problem_response(exc.status_code, detail=detail, headers=dict(exc.headers or {}))


def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    logger.warning("database unavailable: %s", type(exc).__name__)
    return problem_response(
        503,
        slug="service-unavailable",
        detail="The database is unavailable; retry shortly.",
        headers={"Retry-After": RETRY_AFTER_SECONDS},
    )


# SQLSTATE classes meaning "not available right now", whatever exception class the driver maps
# them to: 08 connection exception, 53 insufficient resources (too many connections, ...),
# 57P0x shutdown and "cannot connect now" (starting up, shutting down, a resuming compute).
# asyncpg's CannotConnectNowError (57P03) reached us as a plain DBAPIError, answered 500.
_OUTAGE_SQLSTATES = ("08", "53", "57P")


def _sqlstate(exc: sa_exc.DBAPIError) -> str:
    return str(getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None) or "")


async def _on_database_error(request: Request, exc: Exception) -> JSONResponse:
    # Lost or refused connections and timeouts are outages (503, retry); anything else the
    # database rejects is a bug in this service (500).
    outage = isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError) or (
        isinstance(exc, sa_exc.DBAPIError)
        and (exc.connection_invalidated or _sqlstate(exc).startswith(_OUTAGE_SQLSTATES))
    )
    if outage:
        return _unavailable(request, exc)
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
        sa_exc.DBAPIError: _on_database_error,
        sa_exc.TimeoutError: _on_outage,  # no pooled connection within DB_POOL_TIMEOUT
        OSError: _on_outage,  # connection refused / reset while connecting
        TimeoutError: _on_outage,  # connect or statement timeout
        Exception: _on_unexpected,
    }
    for exc_class, handler in handlers.items():
        app.add_exception_handler(exc_class, handler)
