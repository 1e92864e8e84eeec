"""The async engine, and the connection (or transaction) each request works in."""

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Annotated, Any
from uuid import uuid4

from fastapi import Depends, Request
from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

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


ConnectionFactory = Callable[[], AbstractAsyncContextManager[AsyncConnection]]


class Database:
    """Where requests get their database connection.

    Requests use SQLAlchemy Core on the SQLModel tables over a plain connection: no ORM
    session, identity map or attribute instrumentation on the hot path.

    `connection()` runs in autocommit mode: each statement is its own transaction. Every
    hot-path request issues one statement, which PostgreSQL runs atomically anyway, so an
    explicit BEGIN and COMMIT would only add two round trips. `transaction()` wraps several
    statements that must commit together (an idempotent create, a user's provisioning) in
    BEGIN ... COMMIT, committed when the block ends and rolled back if it raises.
    """

    def __init__(self, connect: ConnectionFactory, begin: ConnectionFactory) -> None:
        self.connection = connect
        self.transaction = begin

    @classmethod
    def for_engine(cls, engine: AsyncEngine) -> "Database":
        autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        return cls(autocommit.connect, engine.begin)

    @classmethod
    def inside(cls, connection: AsyncConnection) -> "Database":
        """Everything on one connection, each use in a savepoint of its open transaction
        (tests: all of a test's requests inside one transaction that is rolled back)."""

        @asynccontextmanager
        async def savepoint() -> AsyncIterator[AsyncConnection]:
            async with connection.begin_nested():
                yield connection

        return cls(savepoint, savepoint)


async def get_database(request: Request) -> Database:
    database: Database = request.app.state.db
    return database


async def _request_connection(request: Request) -> AsyncIterator[AsyncConnection]:
    async with (await get_database(request)).connection() as connection:
        yield connection


# scope="function": the connection goes back to the pool when the endpoint returns, before
# the response is sent; every write has committed by then.
ConnectionDep = Annotated[AsyncConnection, Depends(_request_connection, scope="function")]
DatabaseDep = Annotated[Database, Depends(get_database)]
