"""The ASGI application: wiring only (routers, middleware, error handlers, lifespan)."""

import gc
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import httpx
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from backend import health, migrations, tracing
from backend.auth.setup import build_verifier
from backend.db import database_url, open_database
from backend.errors import install_error_handlers
from backend.maintenance import housekeeping
from backend.middleware import BodyGuardMiddleware, RequestMiddleware
from backend.observability import configure_logging, metrics_endpoint, pool_registry
from backend.openapi import install_openapi
from backend.problems import problems_endpoint
from backend.settings import Settings, get_settings
from backend.shutdown import Drain, draining_on_sigterm
from backend.sync.hub import EventHub
from backend.sync.router import router as sync_router
from backend.tags.router import router as tags_router
from backend.todos.router import router as todos_router
from backend.users.dependencies import install_user_handlers
from backend.users.router import router as users_router
from backend.users.service import UserService


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    settings.check_production_ready()
    app.state.drain = Drain(settings.drain_seconds)
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(draining_on_sigterm(app.state.drain))
        url = await stack.enter_async_context(database_url(settings))
        if settings.should_auto_migrate:
            await migrations.upgrade(url, settings)
        # Closed after the pool: the spans of its last statements are flushed too.
        await stack.enter_async_context(tracing.running(app))
        database = await stack.enter_async_context(open_database(settings, url))
        await database.warm_up()
        http_client = await stack.enter_async_context(
            httpx.AsyncClient(timeout=settings.auth_jwks_timeout, follow_redirects=False)
        )
        app.state.db = database
        app.state.users = UserService(database)
        app.state.verifier = build_verifier(settings, http_client)
        app.state.pool_registry = pool_registry(database)
        hub = EventHub(database, settings, direct_url=_direct_url(settings, url))
        app.state.events = await stack.enter_async_context(hub.running(app.state.drain.stopping))
        await stack.enter_async_context(housekeeping(database, settings))
        # Everything built so far lives as long as the process: move it out of the garbage
        # collector's reach, so that full collections stay short (they stall every request).
        gc.freeze()
        yield


def _direct_url(settings: Settings, url: str) -> str | None:
    """Where the LISTEN connection goes: DATABASE_DIRECT_URL, or the embedded PostgreSQL
    (direct by nature); None (instances poll) for a DATABASE_URL without a direct one."""
    if settings.database_direct_url is not None:
        return settings.database_direct_url.get_secret_value()
    return url if settings.database_url is None else None


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings)
    app = FastAPI(
        title="Todo API",
        version="0.1.0",
        description="Multi-user todos. Authenticate with a Better Auth JWT as a bearer token.",
        lifespan=lifespan,
        # FastAPI's native OpenTelemetry asks the global providers whether anyone listens on
        # every request (about 20 µs). Off: traces, when wanted, come from backend.tracing.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    install_error_handlers(app)
    install_user_handlers(app)
    install_openapi(app)
    # Starlette runs the middleware added last first: request id, access log and metrics;
    # then CORS (so that the body guard's errors carry CORS headers too); then the body guard.
    app.add_middleware(BodyGuardMiddleware, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=True,
            allow_methods=["GET", "POST", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "If-Match",
                "Idempotency-Key",
                "Last-Event-ID",  # a reconnecting event stream resumes with it
            ],
            expose_headers=[
                "ETag",
                "Location",
                "Idempotent-Replayed",
                "Retry-After",
                "X-Request-ID",
            ],
        )
    app.add_middleware(RequestMiddleware)
    app.add_api_route("/metrics", metrics_endpoint, include_in_schema=False)
    app.add_api_route("/problems", problems_endpoint, include_in_schema=False)
    app.include_router(health.router)
    app.include_router(sync_router)  # before /todos/{id}, which "changes" is not
    app.include_router(todos_router)
    app.include_router(tags_router)
    app.include_router(users_router)
    if tracing.wanted(settings):  # off: nothing of OpenTelemetry's SDK is even imported
        tracing.install(app, settings)
    return app


app = create_app()
