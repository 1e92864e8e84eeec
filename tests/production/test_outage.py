"""Database outages under load (README: Operations): a real API process on a PostgreSQL the
test stops, starts and whose backends it terminates (as Neon's suspend does).

- Stopped: every request fails fast with 503 problem+json and Retry-After; /readyz says 503,
  /healthz stays 200. Started again: requests succeed within seconds, with no restart.
- Terminated backends cost at most one failed request each, answered 503, never 500.
- No write answered 2xx is lost.
"""

import asyncio
import time
from collections.abc import Iterable

import asyncpg
import httpx
import pytest

from tests.production.api import ApiFactory, ApiServer
from tests.production.databases import CONNECT_TIMEOUT, ScratchFactory, database_name
from tests.production.postgres import PostgresServer
from tests.production.workload import (
    CLIENT_LIMITS,
    MixedWorkload,
    Outcome,
    print_figure,
    summarize,
)
from tests.support import TokenFactory, connect, connected

# Low timeouts so that the test is quick; the defaults (connect 5 s, pool 5 s, statement
# 10 s) behave the same, only slower.
FAST_FAIL = {"db_connect_timeout": 2, "db_pool_timeout": 2, "db_statement_timeout": 2}
PER_REQUEST_LIMIT = 5.0  # seconds: the "fails within a few seconds" budget


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) > 0
    assert response.json()["status"] == 503


def failures(outcomes: Iterable[Outcome]) -> list[Outcome]:
    # 404: a get/patch that raced a delete of the same todo in the workload itself.
    return [o for o in outcomes if o.status is None or (o.status >= 400 and o.status != 404)]


def assert_all_503(outcomes: Iterable[Outcome]) -> None:
    for outcome in failures(outcomes):
        assert outcome.status == 503, outcome
        assert outcome.content_type == "application/problem+json", outcome
        assert outcome.retry_after is not None, outcome


async def assert_writes_kept(database_url: str, workload: MixedWorkload) -> None:
    """Every todo answered 201 exists unless answered 204 to a delete; every 204 is gone."""
    async with connected(database_url, connect_timeout=CONNECT_TIMEOUT) as connection:
        rows = await connection.fetch(
            "SELECT id::text FROM todo WHERE id = ANY($1::uuid[])", workload.ids
        )
    present = {row["id"] for row in rows}
    lost = set(workload.ids) - workload.deleted - present
    resurrected = workload.deleted & present
    assert not lost, f"{len(lost)} todos answered 201 are missing"
    assert not resurrected, f"{len(resurrected)} todos answered 204 still exist"


async def test_outage_and_recovery(
    pg_running: PostgresServer, scratch: ScratchFactory, api: ApiFactory, tokens: TokenFactory
) -> None:
    url = await scratch(pg_running.url())
    server = api(url, db_pool_size=5, **FAST_FAIL)
    headers = [tokens.headers(f"outage-user-{index}") for index in range(3)]

    async with httpx.AsyncClient(
        base_url=server.base_url, timeout=15, limits=CLIENT_LIMITS
    ) as client:
        workload = MixedWorkload(client, headers)
        async with workload.in_background(concurrency=4, pause=0.01, deadline=60):
            await asyncio.sleep(1.5)
            assert workload.outcomes
            assert not failures(workload.outcomes), workload.outcomes[:3]

            stop_issued = time.monotonic()
            await asyncio.to_thread(pg_running.stop, "fast")
            stopped = time.monotonic()
            await asyncio.sleep(0.5)
            healthz = await client.get("/healthz")
            readyz = await client.get("/readyz")
            await asyncio.sleep(2.0)

            start_issued = time.monotonic()
            await asyncio.to_thread(pg_running.start)
            started = time.monotonic()
            for _ in range(300):  # at most 15 s
                if any(o.ok and o.started >= started for o in workload.outcomes):
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.5)  # keep going a little after recovery
            readyz_after = await client.get("/readyz")

    outcomes = workload.outcomes
    during = [o for o in outcomes if o.started >= stopped and o.finished <= start_issued]
    first_503 = min((o.finished for o in outcomes if o.status == 503), default=None)
    first_ok_after = min(
        (o.finished for o in outcomes if o.ok and o.started >= started), default=None
    )
    slowest = max(outcomes, key=lambda o: o.elapsed)
    tail = [o for o in outcomes if first_ok_after and o.started >= first_ok_after + 0.2]
    print_figure(
        f"outage: {len(outcomes)} requests, statuses {summarize(outcomes)};"
        f" pg_ctl stop took {stopped - stop_issued:.2f}s, start {started - start_issued:.2f}s;"
        f" first 503 {first_503 - stop_issued if first_503 else float('nan'):.3f}s after stop"
        f" was issued; {len(during)} requests while down, slowest"
        f" {max((o.elapsed for o in during), default=0) * 1000:.0f} ms;"
        f" first success {first_ok_after - started if first_ok_after else float('nan'):.3f}s"
        f" after the server was ready ({(first_ok_after or 0) - start_issued:.3f}s after"
        f" start was issued); slowest request overall {slowest.elapsed * 1000:.0f} ms"
        f" ({slowest.op} {slowest.status}); {len(workload.ids)} todos created"
    )

    assert healthz.status_code == 200
    assert_unavailable(readyz)
    assert during, "no request was sent while the database was down"
    assert all(o.status == 503 for o in during), summarize(during)
    assert first_503 is not None
    assert_all_503(outcomes)
    assert slowest.elapsed <= PER_REQUEST_LIMIT, slowest
    assert first_ok_after is not None, "no request succeeded after the database came back"
    assert first_ok_after - started <= 5.0
    assert tail, "no requests after recovery"
    assert not failures(tail), summarize(failures(tail))
    assert readyz_after.status_code == 200
    await assert_writes_kept(url, workload)


async def test_database_shutting_down_is_503(
    pg_running: PostgresServer, scratch: ScratchFactory, api: ApiFactory, tokens: TokenFactory
) -> None:
    """A server that is shutting down (or starting up: same SQLSTATE 57P03, 'cannot connect
    now', which is also what a restarting or resuming compute answers) refuses new sessions
    with an error message, not a refused TCP connection; a plain stop/start under load hits
    that window now and then. Held open deterministically here: a smart shutdown waits for an
    open session. (It was answered 500 until backend/errors.py classified SQLSTATEs 08, 53
    and 57P as outages.)"""
    url = await scratch(pg_running.url())
    holder = await connect(pg_running.url(), connect_timeout=CONNECT_TIMEOUT)
    try:
        await asyncio.to_thread(pg_running.begin_smart_shutdown)
        with pytest.raises(asyncpg.CannotConnectNowError, match="shutting down"):
            await connect(pg_running.url(), connect_timeout=CONNECT_TIMEOUT)
        # Started now, its pool cannot open a connection: every request must connect.
        server = api(url, **FAST_FAIL)
        async with httpx.AsyncClient(
            base_url=server.base_url, timeout=15, limits=CLIENT_LIMITS
        ) as client:
            todos = await client.get("/todos", headers=tokens.headers())
            readyz = await client.get("/readyz")
    finally:
        await holder.close()
        await asyncio.to_thread(pg_running.wait_stopped)
    assert_unavailable(readyz)
    assert_unavailable(todos)


async def terminate_backends(database_url: str, database: str) -> int:
    async with connected(database_url, connect_timeout=CONNECT_TIMEOUT) as connection:
        return int(
            await connection.fetchval(
                "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = $1 AND pid <> pg_backend_pid()) AS killed",
                database,
            )
        )


async def test_terminated_backends_cost_at_most_one_request_each(
    pg_running: PostgresServer, scratch: ScratchFactory, api: ApiFactory, tokens: TokenFactory
) -> None:
    url = await scratch(pg_running.url())
    database = database_name(url)
    server: ApiServer = api(url, db_pool_size=5, **FAST_FAIL)
    headers = [tokens.headers(f"killed-user-{index}") for index in range(4)]
    killed = 0

    async with httpx.AsyncClient(
        base_url=server.base_url, timeout=15, limits=CLIENT_LIMITS
    ) as client:
        workload = MixedWorkload(client, headers)
        async with workload.in_background(concurrency=8, deadline=60):
            await asyncio.sleep(1.0)
            for _ in range(5):
                killed += await terminate_backends(pg_running.url(), database)
                await asyncio.sleep(0.6)
            await asyncio.sleep(0.5)
            readyz = await client.get("/readyz")

    outcomes = workload.outcomes
    failed = failures(outcomes)
    print_figure(
        f"terminated backends: {killed} connections killed in 5 rounds under load;"
        f" {len(outcomes)} requests, statuses {summarize(outcomes)}, {len(failed)} failed"
    )
    assert killed >= 5
    assert len(failed) <= killed
    assert_all_503(outcomes)
    assert readyz.status_code == 200
    await assert_writes_kept(url, workload)
