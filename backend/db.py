"""Where requests get their database connection: one asyncpg pool per process.

Requests execute statements compiled once from the SQLModel tables (backend.sql) on asyncpg
directly. SQLAlchemy's engine exists only for Alembic (backend.migrations) and tests.

- `Database.connection()`: autocommit, each statement its own transaction. A hot-path request
  issues one statement, which PostgreSQL runs atomically anyway: BEGIN and COMMIT would only
  add two round trips.
- `Database.transaction()`: BEGIN ... COMMIT around statements that must commit together,
  rolled back if the block raises.

The pool is fixed-size: connections are opened on first demand and then kept (no overflow
connections opened for a burst and closed again, each a TCP and TLS handshake and a server
fork). Only a connection that sat idle for `DB_PING_AFTER_IDLE` seconds — the only kind that
can have died unnoticed, e.g. when a Neon compute was suspended — is pinged before use.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import asyncpg
from asyncpg import Record
from asyncpg.pool import PoolConnectionProxy
from sqlalchemy import NullPool
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from backend.db_url import parse_database_url
from backend.embedded import EmbeddedPostgres
from backend.errors import ProblemError, ServiceUnavailable, is_outage
from backend.settings import Settings

# What repositories receive: a pooled connection (or, in tests, a plain one).
type Connection = PoolConnectionProxy[Record] | asyncpg.Connection[Record]


# See Database.note_timeout.
OUTAGE_LATCH_SECONDS = 1.0


class DatabaseDown(ServiceUnavailable):
    def __init__(self) -> None:
        super().__init__("The database is unavailable; retry shortly.")


def _leaves_connection_usable(exc: BaseException) -> bool:
    """A problem of ours (404, 409, ...) or an error the server reported for one statement
    (a constraint, say) leaves the connection ready for the next request; anything else
    (a lost connection, a timeout, a cancellation) may not."""
    if isinstance(exc, ProblemError):
        return True
    return isinstance(exc, asyncpg.PostgresError) and not is_outage(exc)


class PooledConnection(asyncpg.Connection):
    """An asyncpg connection that remembers when it was last given back to the pool."""

    released_at: float = 0.0


async def _on_connect(connection: PooledConnection) -> None:
    connection.released_at = time.monotonic()  # brand new: no ping needed


async def _on_release(connection: PooledConnection) -> None:
    # Replaces asyncpg's default reset query (a round trip on every release: UNLISTEN,
    # RESET ALL, ...). Requests set no session state; asyncpg still rolls back an open
    # transaction itself before this runs.
    connection.released_at = time.monotonic()


def pool_arguments(database_url: str, settings: Settings) -> dict[str, Any]:
    """Everything asyncpg.create_pool() needs, from DATABASE_URL and the settings."""
    target = parse_database_url(database_url)
    return {
        # The URL's own connect_timeout, if any, wins over DB_CONNECT_TIMEOUT.
        "timeout": settings.db_connect_timeout,
        **target.asyncpg_arguments(),
        # Client-side statement timeout: works through any pooler and costs no round trip.
        "command_timeout": settings.db_statement_timeout,
        # 0: every query uses PostgreSQL's unnamed statement, prepared and executed in one
        # exchange that a transaction-mode pooler keeps on one server connection.
        "statement_cache_size": settings.db_statement_cache_size,
        "min_size": 0,
        "max_size": settings.db_pool_size,
        "max_inactive_connection_lifetime": 0,  # never close a connection for being idle
        "connection_class": PooledConnection,
        "init": _on_connect,
        "reset": _on_release,
    }


async def create_pool(database_url: str, settings: Settings) -> asyncpg.Pool[Record]:
    return await asyncpg.create_pool(**pool_arguments(database_url, settings))


ConnectionFactory = Callable[[], AbstractAsyncContextManager[Connection]]


class Database:
    """Connections for requests; see the module docstring."""

    def __init__(self, pool: asyncpg.Pool[Record], settings: Settings) -> None:
        self.pool = pool
        self._acquire_timeout = settings.db_pool_timeout
        self._down_until = 0.0
        self._ping_after_idle = settings.db_ping_after_idle
        # A ping is trivial: one that takes a second has met a dead connection.
        self._ping_timeout = min(1.0, settings.db_statement_timeout, settings.db_connect_timeout)

    def connection(self) -> AbstractAsyncContextManager[Connection]:
        return _Lease(self)

    def transaction(self) -> AbstractAsyncContextManager[Connection]:
        return self._transaction()

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Connection]:
        async with self.connection() as connection, connection.transaction():
            yield connection

    def note_timeout(self) -> None:
        """A statement or a connection attempt timed out: the database is most likely down
        (behind a pooler, which holds queries rather than refusing them). For the next
        OUTAGE_LATCH_SECONDS, requests fail at once (503) instead of each waiting out its own
        timeout; then the next one tries again, so the service recovers by itself."""
        self._down_until = time.monotonic() + OUTAGE_LATCH_SECONDS

    async def _acquire(self) -> PoolConnectionProxy[Record]:
        if self._down_until and time.monotonic() < self._down_until:
            raise DatabaseDown()
        # An idle connection is handed over at once: only waiting for one needs the timeout,
        # whose timer costs every request about 10 µs.
        timeout = None if self.pool.get_idle_size() else self._acquire_timeout
        connection = await self.pool.acquire(timeout=timeout)
        released_at: float = connection.released_at  # type: ignore[attr-defined]
        if time.monotonic() - released_at < self._ping_after_idle:
            return connection  # in use a moment ago
        try:
            await connection.execute("SELECT 1", timeout=self._ping_timeout)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            # Gone while idle (a restarted server, a suspended compute, a lost network path),
            # and so, most likely, every connection idle as long: drop this one and have the
            # pool replace each of the others on its next use, instead of pinging them one
            # by one. A connection that dies while in use fails its request (503).
            with contextlib.suppress(asyncpg.InterfaceError):
                connection.terminate()
            await self.pool.release(connection)
            await self.pool.expire_connections()
            return await self.pool.acquire(timeout=self._acquire_timeout)
        except BaseException:
            await self.pool.release(connection)
            raise
        return connection

    async def warm_up(self) -> None:
        """Open the whole pool now, so that the first requests do not pay for connecting. A
        database that is down is no reason to fail start-up (/readyz reports it)."""
        connections = await asyncio.gather(
            *(self.pool.acquire(timeout=self._acquire_timeout) for _ in range(self.size)),
            return_exceptions=True,
        )
        for connection in connections:
            if not isinstance(connection, BaseException):
                await self.pool.release(connection)

    @property
    def size(self) -> int:
        return int(self.pool.get_max_size())


class _Lease:
    """`async with database.connection()`: a pooled connection for the block. A class, not
    an @asynccontextmanager generator: this runs on every request."""

    __slots__ = ("_connection", "_database")

    def __init__(self, database: Database) -> None:
        self._database = database

    async def __aenter__(self) -> PoolConnectionProxy[Record]:
        self._connection = await self._database._acquire()
        return self._connection

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, _: object
    ) -> None:
        if isinstance(exc, TimeoutError):
            self._database.note_timeout()
        if exc is not None and not _leaves_connection_usable(exc):
            # Broken mid-operation (or its server is going away): its protocol state is
            # unknown, so it must never serve another request.
            with contextlib.suppress(asyncpg.InterfaceError):  # already closed and gone
                self._connection.terminate()
        await self._database.pool.release(self._connection)


class SavepointDatabase(Database):
    """Every use of the database on one connection, in a savepoint of its open transaction
    (tests: all of a test's requests run inside one transaction that is rolled back)."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def connection(self) -> AbstractAsyncContextManager[Connection]:
        return self._savepoint()

    def transaction(self) -> AbstractAsyncContextManager[Connection]:
        return self._savepoint()

    @asynccontextmanager
    async def _savepoint(self) -> AsyncIterator[Connection]:
        async with self._connection.transaction():
            yield self._connection


@asynccontextmanager
async def database_url(settings: Settings) -> AsyncIterator[str]:
    """DATABASE_URL, or the URL of the embedded PostgreSQL (started here) when it is unset."""
    if settings.database_url is not None:
        yield settings.database_url.get_secret_value()
        return
    embedded = EmbeddedPostgres(settings.data_dir)
    url = await asyncio.to_thread(embedded.start)
    try:
        yield url
    finally:
        await asyncio.to_thread(embedded.stop)


@asynccontextmanager
async def open_database(settings: Settings, url: str) -> AsyncIterator[Database]:
    pool = await create_pool(url, settings)
    try:
        yield Database(pool, settings)
    finally:
        await close_pool(pool, grace=settings.db_statement_timeout)


async def close_pool(pool: asyncpg.Pool[Record], grace: float) -> None:
    """Close gracefully; a pool that cannot close in time (a dead server) is terminated."""
    try:
        async with asyncio.timeout(grace):
            await pool.close()
    except TimeoutError:
        pool.terminate()


def create_engine(database_url: str, settings: Settings) -> AsyncEngine:
    """A SQLAlchemy engine for Alembic and tests; requests never use it. No pool: every
    use opens a connection of its own and closes it."""
    target = parse_database_url(database_url)
    return create_async_engine(
        target.url,
        poolclass=NullPool,
        connect_args={
            "timeout": settings.db_connect_timeout,
            "command_timeout": settings.db_statement_timeout,
            **target.connect_args,
        },
    )
