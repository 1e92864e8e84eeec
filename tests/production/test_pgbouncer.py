"""Behind PgBouncer in transaction mode (Neon's pooler): thousands of mixed concurrent requests
through a real PgBouncer, with fewer server connections than the API's pool holds, so that
consecutive transactions of one client connection land on different server connections.

The classic failure this guards against: asyncpg's `prepared statement "__asyncpg_stmt_…"
does not exist / already exists` once statements outlive their transaction."""

import asyncio
import time

import httpx
from sqlalchemy.engine import make_url

from tests.production.api import ApiFactory
from tests.production.databases import ScratchFactory, database_name
from tests.production.pgbouncer import PgBouncer, running_pgbouncer
from tests.production.postgres import PostgresServer
from tests.production.workload import CLIENT_LIMITS, MixedWorkload, print_figure, summarize
from tests.support import TokenFactory

REQUESTS = 3000
IN_FLIGHT = 32
USERS = 8


async def test_mixed_load_through_pgbouncer_has_no_errors(
    pgbouncer: PgBouncer,
    database_url: str,
    scratch: ScratchFactory,
    api: ApiFactory,
    tokens: TokenFactory,
) -> None:
    direct_url = await scratch(database_url)  # migrated through the direct URL
    database = database_name(direct_url)
    # API pool (20 + 10 overflow) > PgBouncer's 5 server connections: truly shared.
    # PgBouncer 1.18 (Debian 12) has no protocol-level prepared statements: cache off.
    server = api(pgbouncer.url(database), db_pool_size=20, db_statement_cache_size=0)

    headers = [tokens.headers(f"bouncer-user-{index}") for index in range(USERS)]
    limits = httpx.Limits(
        max_connections=IN_FLIGHT,
        max_keepalive_connections=IN_FLIGHT,
        keepalive_expiry=CLIENT_LIMITS.keepalive_expiry,
    )
    async with httpx.AsyncClient(base_url=server.base_url, limits=limits, timeout=30) as client:
        workload = MixedWorkload(client, headers)
        started = time.monotonic()
        await workload.run(concurrency=IN_FLIGHT, total=REQUESTS, deadline=100)
        elapsed = time.monotonic() - started

        # Every todo answered 201 and not deleted since is still there.
        kept = set(workload.ids) - workload.deleted
        found: set[str] = set()
        for user_headers in headers:
            cursor = None
            for _ in range(200):
                params = {"limit": 100, **({"cursor": cursor} if cursor else {})}
                page = await client.get("/todos", params=params, headers=user_headers)
                assert page.status_code == 200, page.text
                found |= {item["id"] for item in page.json()["items"]}
                cursor = page.json()["next_cursor"]
                if cursor is None:
                    break

    outcomes = workload.outcomes
    errors = [o for o in outcomes if o.status is None or o.status >= 500]
    # 404: a get or patch that raced a delete of the same todo by another in-flight request.
    expected = {200, 201, 204, 404}
    unexpected = [o for o in outcomes if o.status is not None and o.status not in expected]
    assert all(o.op in {"get", "patch", "delete"} for o in outcomes if o.status == 404)
    by_op: dict[str, int] = {}
    for outcome in outcomes:
        by_op[outcome.op] = by_op.get(outcome.op, 0) + 1
    pool = next(row for row in pgbouncer.admin("SHOW POOLS") if row["database"] == database)
    stats = next(row for row in pgbouncer.admin("SHOW STATS") if row["database"] == database)
    print_figure(
        f"PgBouncer (transaction mode, pool_size={pgbouncer.pool_size}): {len(outcomes)} requests"
        f" in {elapsed:.1f}s ({len(outcomes) / elapsed:.0f}/s), {IN_FLIGHT} in flight,"
        f" {USERS} users; statuses {summarize(outcomes)}; ops {dict(sorted(by_op.items()))};"
        f" errors {len(errors)}; PgBouncer: {stats['total_xact_count']} transactions,"
        f" {stats['total_query_count']} queries; pool {pool}"
    )

    assert len(outcomes) == REQUESTS
    assert errors == [], errors[:5]
    assert unexpected == [], unexpected[:5]
    assert kept <= found, f"{len(kept - found)} acknowledged todos are missing"
    logs = server.logs() + pgbouncer.logs()
    assert "prepared statement" not in logs
    assert "unsupported startup parameter" not in logs
    # PgBouncer really multiplexed: at most pool_size server connections for this database.
    servers = sum(int(value) for key, value in pool.items() if key.startswith("sv_"))
    assert servers <= pgbouncer.pool_size, pool


async def test_outage_behind_pgbouncer(
    pgbouncer_on_pg_server: PgBouncer,
    pg_running: PostgresServer,
    scratch: ScratchFactory,
    api: ApiFactory,
    tokens: TokenFactory,
) -> None:
    """Neon's pooler in front of a suspended or restarting compute: the pooler stays up while
    the PostgreSQL behind it goes away and comes back, and holds queries rather than refusing
    them. With the default timeouts every request, the first included, and concurrent ones
    too, must get its 503 within 5 s; the service must recover through the pooler."""
    url = await scratch(pg_running.url())
    server = api(
        pgbouncer_on_pg_server.url(database_name(url)),
        db_statement_cache_size=0,  # PgBouncer 1.18 has no prepared-statement support
    )
    headers = tokens.headers()
    async with httpx.AsyncClient(
        base_url=server.base_url, timeout=15, limits=CLIENT_LIMITS
    ) as client:
        warm = await client.post("/todos", json={"title": "before"}, headers=headers)
        assert warm.status_code == 201

        await asyncio.to_thread(pg_running.stop, "fast")
        down: list[tuple[httpx.Response, float]] = []

        async def timed_get() -> None:
            started = time.monotonic()
            response = await client.get("/todos", headers=headers)
            down.append((response, time.monotonic() - started))

        await timed_get()  # the first, alone
        await asyncio.gather(*(timed_get() for _ in range(20)))  # a crowd
        for _ in range(3):
            await timed_get()
        readyz = await client.get("/readyz")

        await asyncio.to_thread(pg_running.start)
        back = time.monotonic()
        recovered = None
        for _ in range(40):  # at most ~10 s
            response = await client.get("/todos", headers=headers)
            if response.status_code == 200:
                recovered = time.monotonic() - back
                break
            assert response.status_code == 503, response.text
            await asyncio.sleep(0.25)

    print_figure(
        f"outage behind PgBouncer, default timeouts: {len(down)} requests, slowest 503 in "
        f"{max(elapsed for _, elapsed in down):.2f}s (first {down[0][1]:.2f}s); /readyz "
        f"{readyz.status_code}; first 200 {recovered or float('nan'):.2f}s after the server "
        "was back"
    )
    for response, elapsed in down:
        assert response.status_code == 503, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert "retry-after" in response.headers
        assert elapsed <= 5.0
    assert readyz.status_code == 503
    assert recovered is not None
    assert recovered <= 5.0


async def test_a_password_in_the_url_works_through_pgbouncer(
    database_url: str, scratch: ScratchFactory, api: ApiFactory, tokens: TokenFactory
) -> None:
    """The usual CI and compose form, postgresql://user:password@host/db: PgBouncer checks the
    password (auth_type plain) and the API must send it (it once did not: every request 503)."""
    with_password = (
        make_url(database_url).set(password="a-password").render_as_string(hide_password=False)
    )
    database = database_name(await scratch(with_password))
    with running_pgbouncer(with_password) as pgbouncer:
        assert ":a-password@" in pgbouncer.url(database)
        server = api(pgbouncer.url(database), db_statement_cache_size=0)
        headers = tokens.headers("password-user")
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
            created = await client.post("/todos", json={"title": "hi"}, headers=headers)
            listed = await client.get("/todos", headers=headers)
    assert created.status_code == 201, created.text
    assert listed.status_code == 200
