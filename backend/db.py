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


def _unique_statement_name() -> str:
    # Statements kept in the cache need a name; a unique one can never collide with a
    # statement left over on a server connection a pooler handed us.
    return f"__asyncpg_{uuid4().hex}__"


def _unnamed_statement() -> str:
    # Uncached statements use PostgreSQL's unnamed statement: it needs no Close message
    # afterwards (asyncpg sends one, a round trip, for every named statement it discards),
    # and prepare and execute reach the server without a Sync in between, so a
    # transaction-mode pooler keeps them on one server connection.
    return ""


def create_engine(database_url: str, settings: Settings) -> AsyncEngine:
    target = parse_database_url(database_url)
    connect_args: dict[str, Any] = {
        "timeout": settings.db_connect_timeout,
        # Client-side statement timeout: works through any pooler and costs no round trip.
        "command_timeout": settings.db_statement_timeout,
        "statement_cache_size": settings.db_statement_cache_size,
        "prepared_statement_cache_size": settings.db_statement_cache_size,
        "prepared_statement_name_func": (
            _unique_statement_name if settings.db_statement_cache_size else _unnamed_statement
        ),
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


class Database:
    """Where requests get their sessions.

    `session()` runs in autocommit mode: each statement is its own transaction. Every hot-path
    request issues one statement, which PostgreSQL runs atomically anyway, so an explicit
    BEGIN and COMMIT would only add two round trips. `transaction()` wraps several statements
    that must commit together (an idempotent create, a user's provisioning) in BEGIN ... COMMIT.
    """

    def __init__(
        self,
        autocommit: async_sessionmaker[AsyncSession],
        transactional: async_sessionmaker[AsyncSession],
    ) -> None:
        self._autocommit = autocommit
        self._transactional = transactional

    @classmethod
    def for_engine(cls, engine: AsyncEngine) -> "Database":
        # expire_on_commit=False: loaded objects stay readable after a commit without a lazy
        # reload, which async code cannot do.
        def sessions(bind: AsyncEngine) -> async_sessionmaker[AsyncSession]:
            return async_sessionmaker(bind, class_=AsyncSession, expire_on_commit=False)

        autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        return cls(sessions(autocommit), sessions(engine))

    @classmethod
    def single(cls, sessionmaker: async_sessionmaker[AsyncSession]) -> "Database":
        """Both kinds of session from one factory (tests: all inside one rolled-back
        transaction, where every `begin()` becomes a savepoint)."""
        return cls(sessionmaker, sessionmaker)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        # begin() costs no round trip in autocommit mode; it keeps test savepoints working.
        async with self._autocommit() as session, session.begin():
            yield session

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """Commits when the block ends without an exception, rolls back otherwise."""
        async with self._transactional() as session, session.begin():
            yield session


def get_database(request: Request) -> Database:
    database: Database = request.app.state.db
    return database


async def _request_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with get_database(request).session() as session:
        yield session


# scope="function": the session ends when the endpoint returns, *before* the response is
# sent, so a failed write can never be answered with a 2xx. The session connects lazily, on
# its first statement.
SessionDep = Annotated[AsyncSession, Depends(_request_session, scope="function")]
DatabaseDep = Annotated[Database, Depends(get_database)]
