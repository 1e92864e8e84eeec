"""TLS database URLs (README: Deploying) against a real PostgreSQL with `ssl = on` and a certificate
from a throwaway CA: what libpq-style URLs from Neon's dashboard do through the service's own
engine factory."""

import logging
import ssl
from pathlib import Path

import pytest

from backend import db_url
from tests.production.api import SECRET
from tests.production.postgres import PostgresServer
from tests.production.processes import port_is_open
from tests.support import app_database, make_settings

SSL_IN_USE = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"


@pytest.fixture
def tls_server(pg_running: PostgresServer) -> PostgresServer:
    if not pg_running.tls:
        pytest.skip("no PostgreSQL built with OpenSSL on this machine (/usr/lib/postgresql/N)")
    return pg_running


async def ssl_in_use(url: str, tmp_path: Path) -> bool:
    """Whether the app's own connection to `url` is encrypted."""
    settings = make_settings(url, tmp_path, auth_secret=SECRET, db_connect_timeout=5)
    async with app_database(url, settings) as database, database.connection() as connection:
        return bool(await connection.fetchval(SSL_IN_USE))


async def test_sslmode_require_encrypts(tls_server: PostgresServer, tmp_path: Path) -> None:
    assert await ssl_in_use(tls_server.url(sslmode="require"), tmp_path) is True
    # The same query says false on a plain connection: the assertion above can fail.
    assert await ssl_in_use(tls_server.url(sslmode="disable"), tmp_path) is False


async def test_verify_full_with_the_right_ca(
    tls_server: PostgresServer, certificate_files: dict[str, Path], tmp_path: Path
) -> None:
    ca = certificate_files["ca"]
    for host in ("localhost", "127.0.0.1"):  # DNS and IP subject alternative names
        url = tls_server.url(host=host, sslmode="verify-full", sslrootcert=str(ca))
        assert await ssl_in_use(url, tmp_path) is True


async def test_verify_full_with_a_wrong_ca_fails_clearly(
    tls_server: PostgresServer, certificate_files: dict[str, Path], tmp_path: Path
) -> None:
    url = tls_server.url(
        host="localhost", sslmode="verify-full", sslrootcert=str(certificate_files["other_ca"])
    )
    with pytest.raises(ssl.SSLCertVerificationError) as caught:
        await ssl_in_use(url, tmp_path)
    assert "certificate verify failed" in str(caught.value)


async def test_verify_full_checks_the_host_name(
    tls_server: PostgresServer, certificate_files: dict[str, Path], tmp_path: Path
) -> None:
    """The certificate names localhost and 127.0.0.1; reached as 127.0.0.2 it must be refused
    by verify-full but accepted by verify-ca (which checks the chain only)."""
    if not port_is_open(tls_server.port, "127.0.0.2"):
        pytest.skip("the server does not listen on 127.0.0.2")
    ca = str(certificate_files["ca"])
    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        await ssl_in_use(
            tls_server.url(host="127.0.0.2", sslmode="verify-full", sslrootcert=ca), tmp_path
        )
    url = tls_server.url(host="127.0.0.2", sslmode="verify-ca", sslrootcert=ca)
    assert await ssl_in_use(url, tmp_path) is True


async def test_channel_binding_is_dropped_with_one_warning(
    tls_server: PostgresServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The warning is once per process; forget whether an earlier test already triggered it.
    monkeypatch.setattr(db_url, "_warned", set())
    url = tls_server.url(sslmode="require", channel_binding="require")
    with caplog.at_level(logging.WARNING, logger="backend.db_url"):
        assert await ssl_in_use(url, tmp_path) is True
        assert await ssl_in_use(url, tmp_path) is True  # a second engine: no second warning
    warnings = [
        record
        for record in caplog.records
        if record.name == "backend.db_url" and "channel_binding" in record.getMessage()
    ]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "asyncpg does not support" in message
    assert "sslmode=verify-full" in message
