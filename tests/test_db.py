"""The connection pool as production runs it: fixed, reused, and repaired when idle
connections died (a restarted server, a suspended Neon compute)."""

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.support import TokenFactory, connected, make_settings, running
from tests.wire import WireProxy


async def sessions_opened(database_url: str) -> int:
    """PostgreSQL's count of sessions ever opened on this database."""
    async with connected(database_url) as connection:
        count: int = await connection.fetchval(
            "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
        )
    return count


APPLICATION = "todo-api-pool-test"


@pytest.fixture
async def api(migrated: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    # Its own application_name, so that the test can kill its connections and no others.
    url = make_url(migrated).update_query_dict({"application_name": APPLICATION})
    database_url = url.render_as_string(hide_password=False)
    settings = make_settings(database_url, tmp_path, db_pool_size=4, db_ping_after_idle=0.2)
    async with running(settings) as client:
        yield client


async def test_a_burst_opens_no_connection_beyond_the_pool(
    api: httpx.AsyncClient, migrated: str, tokens: TokenFactory
) -> None:
    headers = tokens.headers()
    assert (await api.get("/todos", headers=headers)).status_code == 200
    before = await sessions_opened(migrated)

    for _ in range(5):  # bursts of 50 concurrent requests on a pool of 4
        responses = await asyncio.gather(*(api.get("/todos", headers=headers) for _ in range(50)))
        assert {response.status_code for response in responses} == {200}

    # The pool was opened at start-up; only our own counting connection is new.
    assert await sessions_opened(migrated) - before <= 1


@pytest.fixture
async def proxied(
    migrated: str, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, WireProxy]]:
    """An app whose connections go through a proxy that can make them die silently."""
    proxy = WireProxy(migrated)
    url = await proxy.start()
    settings = make_settings(
        url,
        tmp_path,
        db_pool_size=2,
        db_ping_after_idle=0.2,
        db_statement_timeout=1,
        db_connect_timeout=1,
    )
    try:
        async with running(settings) as client:
            yield client, proxy
    finally:
        await proxy.stop()


async def test_an_idle_connection_that_died_silently_is_replaced_before_use(
    proxied: tuple[httpx.AsyncClient, WireProxy], tokens: TokenFactory
) -> None:
    """No FIN, no error: only the ping of a connection idle past DB_PING_AFTER_IDLE finds out
    (within the ping's timeout); without it the request would hang for the statement timeout
    and fail."""
    api, proxy = proxied
    headers = tokens.headers()
    assert (await api.get("/todos", headers=headers)).status_code == 200
    proxy.blackhole_existing()
    await asyncio.sleep(0.3)  # idle past DB_PING_AFTER_IDLE

    responses = [await api.get("/todos", headers=headers) for _ in range(4)]

    assert [response.status_code for response in responses] == [200] * 4


async def test_after_a_timeout_requests_fail_at_once_for_a_moment(
    migrated: str, tmp_path: Path, tokens: TokenFactory
) -> None:
    """A database that holds queries (down behind a pooler): the first request waits out the
    statement timeout; the next ones get their 503 at once instead of each waiting too."""
    proxy = WireProxy(migrated)
    url = await proxy.start()
    settings = make_settings(
        url, tmp_path, db_pool_size=3, db_statement_timeout=1, db_ping_after_idle=3600
    )
    headers = tokens.headers()
    try:
        async with running(settings) as api:
            assert (await api.get("/todos", headers=headers)).status_code == 200
            proxy.blackhole_existing()

            timings = []
            for _ in range(3):
                started = time.monotonic()
                response = await api.get("/todos", headers=headers)
                timings.append((response.status_code, time.monotonic() - started))
    finally:
        await proxy.stop()

    (first, first_took), *rest = timings
    assert first == 503
    assert 0.9 <= first_took <= 2.0
    assert all(status == 503 and took < 0.2 for status, took in rest), timings
