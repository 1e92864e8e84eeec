"""Tracing (backend.tracing, docs/tracing.md): off by default and then free; on, one server
span per request with its route and user, a child span per SQL statement, and never a token,
a query value or a statement parameter.

The traced apps here run on their own pool (as in production, not the rolled-back shared
connection of `client`), with the SDK's in-memory exporter behind a synchronous processor
passed through `tracing.install`'s seam; the instrumentation itself is the real one.
"""

import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from backend import tracing
from backend.main import create_app
from backend.settings import ConfigurationError, Settings
from backend.users.models import User
from tests.support import TokenFactory, bearer, make_settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def no_otel_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The settings here say what is traced, not the shell's OTEL_* variables."""
    for name in [name for name in os.environ if name.startswith("OTEL_")]:
        monkeypatch.delenv(name)


@pytest.fixture
def tracing_settings(migrated: str, data_dir: Path) -> Settings:
    return make_settings(migrated, data_dir, db_pool_size=2)


@pytest.fixture
async def user_id(engine: AsyncEngine) -> AsyncIterator[str]:
    """A fresh user, deleted (with its todos) afterwards: traced apps commit."""
    user = f"tracing-{uuid.uuid4().hex}"
    yield user
    async with engine.begin() as connection:
        await connection.execute(delete(User).where(col(User.id) == user))


@asynccontextmanager
async def traced_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


@asynccontextmanager
async def in_memory(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    exporter = InMemorySpanExporter()
    app = create_app(settings)
    tracing.install(app, settings, processor=SimpleSpanProcessor(exporter))
    async with traced_client(app) as client:
        yield client, exporter


def values_of(span: ReadableSpan) -> Iterator[str]:
    """Everything a span carries as text: its name, attributes, and its events'."""
    yield span.name
    mappings: list[Mapping[str, Any]] = [span.attributes or {}]
    mappings += [event.attributes or {} for event in span.events]
    for attributes in mappings:
        for key, value in attributes.items():
            yield key
            yield from (map(str, value) if isinstance(value, tuple) else [str(value)])


def assert_nowhere(spans: list[ReadableSpan], *secrets: str) -> None:
    for span in spans:
        for text in values_of(span):
            for secret in secrets:
                assert secret not in text, f"{secret!r} in span {span.name!r}: {text!r}"


async def test_a_request_is_one_server_span_with_route_and_user_and_its_sql_as_children(
    tracing_settings: Settings, tokens: TokenFactory, user_id: str
) -> None:
    token = tokens(user_id)
    title = f"private title {uuid.uuid4().hex}"
    async with in_memory(tracing_settings) as (client, exporter):
        created = await client.post("/todos", json={"title": title}, headers=bearer(token))
        assert created.status_code == 201, created.text
        todo_id = created.json()["id"]
        creating = exporter.get_finished_spans()
        exporter.clear()

        response = await client.get(f"/todos/{todo_id}", headers=bearer(token))
        assert response.status_code == 200
        spans = exporter.get_finished_spans()

    (server,) = [span for span in spans if span.kind is SpanKind.SERVER]
    assert server.name == "GET /todos/{todo_id}"
    assert server.attributes is not None
    assert server.context is not None
    assert server.attributes["http.route"] == "/todos/{todo_id}"
    assert server.attributes["enduser.id"] == user_id
    assert server.attributes["http.status_code"] == 200
    assert server.resource.attributes["service.name"] == "todo-api"
    assert not [key for key in server.attributes if key.startswith("http.request.header.")]

    trace_id = server.context.trace_id
    statements = [
        span
        for span in spans
        if span.kind is SpanKind.CLIENT and span.context and span.context.trace_id == trace_id
    ]
    for span in statements:
        assert span.parent is not None
        assert span.parent.span_id == server.context.span_id
        assert span.attributes is not None
        assert span.attributes["db.system"] == "postgresql"
        assert "db.statement.parameters" not in span.attributes
    # (A pooled connection idle for DB_PING_AFTER_IDLE would add its ping, `SELECT`.)
    (get,) = [span for span in statements if span.name == "todos.get"]
    assert get.attributes is not None
    assert get.attributes["db.query.summary"] == "todos.get"
    statement = str(get.attributes["db.statement"])
    assert "$1" in statement
    assert todo_id not in statement
    assert user_id not in statement

    # The creation: the title went to PostgreSQL as a parameter, and into no span.
    assert {span.name for span in creating} >= {"POST /todos", "users.provision", "todos.insert"}
    assert_nowhere(creating + spans, token, title)


async def test_query_values_are_redacted_and_names_kept(
    tracing_settings: Settings, tokens: TokenFactory, user_id: str
) -> None:
    searched = f"needle{uuid.uuid4().hex}"
    async with in_memory(tracing_settings) as (client, exporter):
        response = await client.get(
            "/todos", params={"q": searched, "limit": 5}, headers=tokens.headers(user_id)
        )
        assert response.status_code == 200
        spans = exporter.get_finished_spans()

    (server,) = [span for span in spans if span.kind is SpanKind.SERVER]
    assert server.attributes is not None
    assert server.attributes["http.route"] == "/todos"
    assert server.attributes["http.url"] == "http://test/todos?q=REDACTED&limit=REDACTED"
    # The listing's SQL is compiled per filter combination: named by its verb and table.
    assert "SELECT todo" in [span.name for span in spans if span.kind is SpanKind.CLIENT]
    assert_nowhere(spans, searched)


async def test_captured_headers_never_include_the_token(
    tracing_settings: Settings, tokens: TokenFactory, user_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Header capture is off; an operator who turns it on for every header still gets the
    Authorization header redacted."""
    monkeypatch.setenv("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST", ".*")
    token = tokens(user_id)
    async with in_memory(tracing_settings) as (client, exporter):
        response = await client.get("/users/me", headers=bearer(token))
        assert response.status_code == 200
        spans = exporter.get_finished_spans()

    (server,) = [span for span in spans if span.kind is SpanKind.SERVER]
    assert server.attributes is not None
    assert server.attributes["http.request.header.authorization"] == ("[REDACTED]",)
    assert_nowhere(spans, token)


class Collector(BaseHTTPRequestHandler):
    """A stand-in OTLP/HTTP collector on loopback: keeps what it is sent."""

    received: list[tuple[str, str, bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, self.headers["Content-Type"], body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[tuple[str, list[tuple[str, str, bytes]]]]:
    received: list[tuple[str, str, bytes]] = []
    handler = type("Handler", (Collector,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


async def test_the_otlp_endpoint_setting_exports_every_span_by_shutdown(
    migrated: str,
    data_dir: Path,
    tokens: TokenFactory,
    user_id: str,
    collector: tuple[str, list[tuple[str, str, bytes]]],
) -> None:
    """The production path: OTEL_EXPORTER_OTLP_ENDPOINT, the batching processor and the
    OTLP/HTTP exporter; the batch is flushed when the app stops."""
    endpoint, received = collector
    settings = make_settings(
        migrated, data_dir, db_pool_size=2, otel_exporter_otlp_endpoint=endpoint + "/"
    )
    token = tokens(user_id)
    app = create_app(settings)
    assert isinstance(app.state.tracer_provider, TracerProvider)
    async with traced_client(app) as client:
        assert (await client.get("/users/me", headers=bearer(token))).status_code == 200

    payload = b"".join(body for _, _, body in received)
    assert {(path, kind) for path, kind, _ in received} == {
        ("/v1/traces", "application/x-protobuf")
    }
    assert b"GET /users/me" in payload
    assert user_id.encode() in payload
    assert token.encode() not in payload


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, False),
        ({"otel_exporter_otlp_endpoint": "http://collector:4318"}, True),
        ({"otel_exporter_otlp_traces_endpoint": "http://collector:4318/v1/traces"}, True),
        ({"otel_traces_exporter": "otlp"}, True),
        ({"otel_traces_exporter": "console"}, True),
        ({"otel_traces_exporter": "none", "otel_exporter_otlp_endpoint": "http://c:4318"}, False),
        ({"otel_sdk_disabled": True, "otel_exporter_otlp_endpoint": "http://c:4318"}, False),
        ({"otel_service_name": "todo-api-eu"}, False),
    ],
)
def test_tracing_is_wanted_only_when_the_otel_settings_ask(
    values: dict[str, object], expected: bool
) -> None:
    assert tracing.wanted(Settings(_env_file=None, **values)) is expected  # type: ignore[call-arg]


def test_an_unsupported_otlp_protocol_is_refused_at_start_up() -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        otel_exporter_otlp_endpoint="http://collector:4317",
        otel_exporter_otlp_protocol="grpc",
    )
    with pytest.raises(ConfigurationError, match="http/protobuf"):
        create_app(settings)


def test_tracing_without_the_extra_installed_refuses_to_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.instrumentation.fastapi", None)
    settings = Settings(_env_file=None, otel_traces_exporter="console")  # type: ignore[call-arg]
    with pytest.raises(ConfigurationError, match="--extra tracing"):
        create_app(settings)


OFF_PROBE = """
import json, sys
import fastapi  # FastAPI itself imports OpenTelemetry's API, for its native telemetry

before = {name for name in sys.modules if name.startswith("opentelemetry")}
from opentelemetry import trace

from backend import tracing
from backend.main import create_app
from backend.settings import Settings

app = create_app(Settings())
after = {name for name in sys.modules if name.startswith("opentelemetry")}
print(json.dumps({
    "imported": sorted(after - before),
    "provider": type(trace.get_tracer_provider()).__name__,
    "wanted": tracing.wanted(app.state.settings),
    "installed": hasattr(app.state, "tracer_provider"),
    "patched": hasattr(app, "_original_build_middleware_stack"),
    "middleware": [m.cls.__module__ for m in app.user_middleware],
}))
"""


def test_off_by_default_nothing_of_opentelemetry_is_imported_nor_installed(
    tmp_path: Path,
) -> None:
    """In a process of its own (this one has imported the SDK for the other tests), with no
    OTEL_* variable and no .env: the app imports no OpenTelemetry module beyond the API that
    FastAPI imports anyway, sets no tracer provider and adds no middleware."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    env["PYTHONPATH"] = str(ROOT)
    result = subprocess.run(
        [sys.executable, "-c", OFF_PROBE],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    middleware = probe.pop("middleware")
    assert probe == {
        "imported": [],
        "provider": "ProxyTracerProvider",
        "wanted": False,
        "installed": False,
        "patched": False,
    }
    assert "backend.middleware" in middleware
    assert not [module for module in middleware if module.startswith("opentelemetry")]
