"""The async engine and the one-session-per-request unit of work."""

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any
from uuid import uuid4

from fastapi import Depends, Request
from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from backend.db_url import parse_database_url
from backend.embedded import EmbeddedPostgres
from backend.settings import Settings


def _statement_name() -> str:
    # Unique names: behind a transaction-mode pooler a statement prepared on one server
    # connection must never collide with one left over on another.
    return f"__asyncpg_{uuid4().hex}__"


def create_engine(database_url: str, settings: Settings) -> AsyncEngine:
    target = parse_database_url(database_url)
    connect_args: dict[str, Any] = {
        "timeout": settings.db_connect_timeout,
        # Client-side statement timeout: works through any pooler and costs no round trip.
        "command_timeout": settings.db_statement_timeout,
        "statement_cache_size": settings.db_statement_cache_size,
        "prepared_statement_cache_size": settings.db_statement_cache_size,
        "prepared_statement_name_func": _statement_name,
        **target.connect_args,
    }
    engine = create_async_engine(
        target.url,
        connect_args=connect_args,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        pool_recycle=settings.db_pool_recycle,
    )
    _ping_idle_connections(engine, settings.db_ping_after_idle)
    return engine


def _ping_idle_connections(engine: AsyncEngine, idle_seconds: float) -> None:
    """Pessimistic disconnect handling, only where it pays.

    A resumed Neon compute or a restarted server leaves dead connections in the pool, and only
    a connection that sat idle can have died unnoticed. SQLAlchemy's `pool_pre_ping` checks
    every checkout, and on asyncpg that costs three round trips (BEGIN, ping, ROLLBACK) on
    every request; pinging just the connections idle for `idle_seconds` keeps busy
    connections free of it. A connection that dies while in use still fails its request
    (503), and SQLAlchemy then invalidates every connection that is older than that failure.
    """
    pool = engine.sync_engine.pool
    dialect = engine.sync_engine.dialect

    @event.listens_for(pool, "checkin")
    def _remember_checkin(dbapi_connection: Any, record: Any) -> None:
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        checked_in_at = record.info.get("checked_in_at")
        if checked_in_at is None or time.monotonic() - checked_in_at < idle_seconds:
            return  # brand new, or in use a moment ago
        try:
            alive = dialect.do_ping(dbapi_connection)
        except Exception as exc:  # the driver's error for a dead socket varies
            raise DisconnectionError("idle connection is gone") from exc
        if not alive:
            raise DisconnectionError("idle connection is gone")


@asynccontextmanager
async def open_database(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """An engine on DATABASE_URL, or on the embedded PostgreSQL when it is unset."""
    embedded = None
    if settings.database_url is not None:
        url = settings.database_url.get_secret_value()
    else:
        embedded = EmbeddedPostgres(settings.data_dir)
        url = await asyncio.to_thread(embedded.start)
    engine = create_engine(url, settings)
    try:
        yield engine
    finally:
        await engine.dispose()
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # expire_on_commit=False: objects stay readable after commit without a lazy reload,
    # which would need a greenlet in async code.
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


async def _request_session(request: Request) -> AsyncIterator[AsyncSession]:
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with sessionmaker() as session, session.begin():
        yield session


# scope="function": the transaction commits when the endpoint returns, *before* the response
# is sent, so a failed commit can never be answered with a 2xx.
SessionDep = Annotated[AsyncSession, Depends(_request_session, scope="function")]
