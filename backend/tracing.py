"""Optional tracing with OpenTelemetry: a span per request, a child span per SQL statement.

Off unless the standard OpenTelemetry environment asks for it (`wanted`): an OTLP endpoint
(OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) or an exporter
(OTEL_TRACES_EXPORTER). Off, this module imports nothing of OpenTelemetry's SDK or
instrumentation, adds no middleware, and costs a request one attribute check (`active`, in
`current_user`). On, it needs the `tracing` extra (`uv sync --extra tracing`), and uses the
OpenTelemetry project's FastAPI and asyncpg instrumentations with the SDK, a batching span
processor and the OTLP/HTTP exporter. See docs/tracing.md.

What a span never carries: request headers (so never the bearer token: header capture stays
off, and should someone turn it on through OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_*, the
Authorization and Cookie headers are redacted anyway), query string values (the names stay),
SQL parameters (the statements are parametrized, and the asyncpg instrumentation's
`capture_parameters` stays off).

FastAPI's own native telemetry stays off (main.create_app): the OpenTelemetry project's
instrumentation replaces it, and both would each make a server span.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from backend.settings import ConfigurationError, Settings
from backend.sql import Statement

if TYPE_CHECKING:
    from fastapi import FastAPI
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span

# True while a traced app runs in this process: only then does `current_user` tag the
# request's span with the user id. The one thing a request pays when tracing is off.
active = False

# Health probes and scrapes: frequent, and nothing to learn from their traces.
EXCLUDED_URLS = "/healthz$,/readyz$,/metrics$"
# Redacted even if header capture is turned on through the environment.
SANITIZED_HEADERS = ["authorization", "cookie"]

_ASYNCPG_SCOPE = "opentelemetry.instrumentation.asyncpg"
_SQL_ATTRIBUTES = ("db.statement", "db.query.text")  # old and new semantic conventions
_URL_ATTRIBUTES = ("http.url", "url.full")
_SUMMARY_CACHE_LIMIT = 1_000


def wanted(settings: Settings) -> bool:
    """Whether the OTEL_* settings ask for traces (OpenTelemetry's own rules, except that
    with nothing set tracing is off rather than exporting to localhost)."""
    if settings.otel_sdk_disabled:
        return False
    if settings.otel_traces_exporter is not None:
        return settings.otel_traces_exporter != "none"
    return (
        settings.otel_exporter_otlp_endpoint is not None
        or settings.otel_exporter_otlp_traces_endpoint is not None
    )


def install(app: FastAPI, settings: Settings, processor: SpanProcessor | None = None) -> None:
    """Trace `app`'s requests (and, while it runs, see `running`, its SQL statements).

    `processor` receives every span: by default a batching processor exporting as the
    OTEL_* settings say; tests pass a synchronous one with an in-memory exporter. Call
    before the app starts (the instrumentation wraps its middleware stack when it is built).
    """
    try:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
        from opentelemetry.metrics import NoOpMeterProvider
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        raise ConfigurationError(
            "Tracing is configured (OTEL_*) but OpenTelemetry is not installed: "
            "install the `tracing` extra (uv sync --extra tracing)."
        ) from exc

    if processor is None:
        processor = BatchSpanProcessor(_exporter(settings))
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: settings.otel_service_name}))
    provider.add_span_processor(_statement_names())
    provider.add_span_processor(processor)
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=provider,
        # Request metrics are Prometheus's (backend.observability): none from here.
        meter_provider=NoOpMeterProvider(),
        server_request_hook=_on_request,
        excluded_urls=EXCLUDED_URLS,
        # Header capture is off unless the environment turns it on; redact either way.
        http_capture_headers_sanitize_fields=_sanitized_headers(),
        # One span per request, not three (the ASGI receive and send events).
        exclude_spans=["receive", "send"],
    )
    app.state.tracer_provider = provider


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[None]:
    """The lifespan of tracing, within the app's: SQL statements traced while the app runs,
    and every span flushed to the exporter when it stops. Nothing when `app` is not traced."""
    provider: TracerProvider | None = getattr(app.state, "tracer_provider", None)
    if provider is None:
        yield
        return
    global active, _current_span
    from opentelemetry import trace
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

    # Process-wide (it wraps asyncpg's Connection methods): a second traced app running in
    # the same process at the same time (tests only) shares the first one's provider.
    # capture_parameters=False: the statements' text, never their values.
    instrumentor = AsyncPGInstrumentor(capture_parameters=False)  # type: ignore[no-untyped-call]
    instrumentor.instrument(tracer_provider=provider)
    _current_span = trace.get_current_span
    active = True
    try:
        yield
    finally:
        active = False
        instrumentor.uninstrument()
        # Exports what the batch still holds (a network call: off the event loop).
        await asyncio.to_thread(provider.shutdown)


def tag_user(user_id: str) -> None:
    """Put the authenticated user's id on the request's span (call only while `active`)."""
    _current_span().set_attribute("enduser.id", user_id)


def _no_span() -> Any:
    raise RuntimeError("tracing is not running")


_current_span: Callable[[], Span] = _no_span


def _exporter(settings: Settings) -> SpanExporter:
    if settings.otel_traces_exporter == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    protocol = settings.otel_exporter_otlp_protocol
    if protocol is not None and protocol != "http/protobuf":
        raise ConfigurationError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol}: only http/protobuf is installed "
            "(the collector's port 4318)"
        )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.util.re import parse_env_headers

    # Passed explicitly, since these may come from `.env`, which the SDK does not read. Unset,
    # the exporter falls back to the environment and its defaults itself.
    endpoint = settings.otel_exporter_otlp_traces_endpoint
    if endpoint is None and settings.otel_exporter_otlp_endpoint is not None:
        endpoint = settings.otel_exporter_otlp_endpoint.rstrip("/") + "/v1/traces"
    headers: Mapping[str, str] | None = None
    if settings.otel_exporter_otlp_headers is not None:
        secret = settings.otel_exporter_otlp_headers.get_secret_value()
        headers = parse_env_headers(secret, liberal=True)
    return OTLPSpanExporter(endpoint=endpoint, headers=headers)


def _sanitized_headers() -> list[str]:
    configured = os.environ.get("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS", "")
    return SANITIZED_HEADERS + [name.strip() for name in configured.split(",") if name.strip()]


def _on_request(span: Span, scope: dict[str, Any]) -> None:
    """Right after the request's span starts (the route is matched by then): the route
    template as the access log and metrics have it, and the URL without query values."""
    if not span.is_recording():
        return
    attributes: Mapping[str, Any] = getattr(span, "attributes", None) or {}
    route = attributes.get("http.route")
    if isinstance(route, str) and ":" in route:
        # The instrumentation takes the route's `path`, with convertors: `/todos/{todo_id}`,
        # not `/todos/{todo_id:todo_id}`.
        template = _CONVERTOR.sub(r"{\1}", route)
        span.set_attribute("http.route", template)
        span.update_name(getattr(span, "name", "").replace(route, template))
    raw = scope.get("query_string")
    if not raw:
        return
    # The instrumentation records the full URL, query string included (`?q=` is what a user
    # searches for): keep the parameters' names, not their values.
    query = "&".join(
        f"{name}=REDACTED" for name, _ in parse_qsl(raw.decode("latin-1"), keep_blank_values=True)
    )
    for key in _URL_ATTRIBUTES:
        url = attributes.get(key)
        if isinstance(url, str):
            span.set_attribute(key, url.split("?", 1)[0] + "?" + query)
    if "url.query" in attributes:
        span.set_attribute("url.query", query)


_CONVERTOR = re.compile(r"\{(\w+):[^}]*\}")


def _statement_names() -> SpanProcessor:
    """A processor that names each SQL span after its statement: `todos.get` for
    `backend.todos.statements.GET` (`db.query.summary` too), instead of the instrumentation's
    `SELECT` for all of them. Statements compiled per request shape (a listing's filters)
    are named `<verb> <table>`."""
    from opentelemetry.sdk.trace import SpanProcessor

    known = _known_statements()
    summaries: dict[str, str] = {}

    class StatementNames(SpanProcessor):
        def on_start(self, span: Any, parent_context: Any = None) -> None:
            scope = span.instrumentation_scope
            if scope is None or scope.name != _ASYNCPG_SCOPE:
                return
            attributes = span.attributes
            sql = attributes.get(_SQL_ATTRIBUTES[0]) or attributes.get(_SQL_ATTRIBUTES[1])
            if not isinstance(sql, str):
                return
            summary = summaries.get(sql)
            if summary is None:
                summary = known.get(sql) or _summary(sql)
                if len(summaries) < _SUMMARY_CACHE_LIMIT:
                    summaries[sql] = summary
            span.update_name(summary)
            span.set_attribute("db.query.summary", summary)

    return StatementNames()


def _known_statements() -> dict[str, str]:
    """The SQL of every module-level Statement of the backend's modules (all imported by
    now), named `<module>.<name>`: backend.todos.statements.GET is `todos.get`,
    backend.users.repository._PROVISION is `users.provision`."""
    names: dict[str, str] = {}
    for module_name, module in sorted(sys.modules.items()):
        if not module_name.startswith("backend.") or module is None:
            continue
        parts = [p for p in module_name.split(".")[1:] if p not in ("statements", "repository")]
        prefix = ".".join(parts)
        for attribute, value in vars(module).items():
            if isinstance(value, Statement):
                names.setdefault(value.sql, f"{prefix}.{attribute.lstrip('_').lower()}")
    return names


_VERB = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE)\b", re.IGNORECASE)
_TABLE = re.compile(r'\b(?:FROM|INTO|UPDATE)\s+"?([A-Za-z_][A-Za-z0-9_]*)', re.IGNORECASE)


def _summary(sql: str) -> str:
    """`<VERB> <table>` of the statement itself, not of its subqueries or CTEs (those are in
    parentheses): `SELECT todo` for a listing that aggregates tags in a subquery. The first
    word alone for anything else (`SELECT` for a ping, `BEGIN`)."""
    verb = _top_level(_VERB, sql)
    if verb is None:
        words = sql.split(None, 1)
        return words[0].upper() if words else "SQL"
    table = _top_level(_TABLE, sql, verb.start())
    name = verb.group(1).upper()
    return f"{name} {table.group(1)}" if table else name


def _top_level(pattern: re.Pattern[str], sql: str, start: int = 0) -> re.Match[str] | None:
    """The first match of `pattern` outside any parentheses."""
    for match in pattern.finditer(sql, start):
        prefix = sql[: match.start()]
        if prefix.count("(") == prefix.count(")"):
            return match
    return None
