"""DATABASE_URL normalisation: any libpq-style URL (Neon's included) works with asyncpg.

The unit tests never connect; the last group connects to the test server for real.
"""

import datetime
import inspect
import logging
import ssl
import traceback
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy.engine import make_url

from backend import db_url
from backend.db import pool_arguments
from backend.db_url import DatabaseURLError, parse_database_url
from tests.support import app_database, connect, make_settings

NEON_URL = (
    "postgresql://user:pw@ep-cool-name-123456-pooler.eu-central-1.aws.neon.tech/neondb"
    "?sslmode=require&channel_binding=require"
)
NEON_HOST = "ep-cool-name-123456-pooler.eu-central-1.aws.neon.tech"
PASSWORD = "hunter2-SECRET"


def ssl_of(url: str) -> Any:
    return parse_database_url(url).connect_args["ssl"]


@pytest.fixture
def fresh_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget the one-time warnings already given, as in a newly started process."""
    monkeypatch.setattr(db_url, "_warned", set())


@pytest.fixture(scope="module")
def ca_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A self-signed CA certificate in PEM, as a `sslrootcert` file."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "todo-api test CA")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = tmp_path_factory.mktemp("ca") / "root.crt"
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return path


# --- scheme and credentials -------------------------------------------------------------


@pytest.mark.parametrize(
    "scheme", ["postgres", "postgresql", "postgresql+asyncpg", "postgresql+psycopg"]
)
def test_every_postgresql_scheme_becomes_asyncpg(scheme: str) -> None:
    target = parse_database_url(f"{scheme}://app:pw@db.example.com:6543/todos")

    assert target.url.drivername == "postgresql+asyncpg"
    assert (target.url.host, target.url.port, target.url.database) == (
        "db.example.com",
        6543,
        "todos",
    )
    assert (target.url.username, target.url.password) == ("app", "pw")


def test_percent_escaped_password_decodes_to_the_real_one() -> None:
    target = parse_database_url("postgresql://app:p%40ss%3Aw%2Fd@db.example.com/todos")

    assert target.url.password == "p@ss:w/d"
    assert target.url.host == "db.example.com"


def test_surrounding_whitespace_from_a_pasted_url_is_ignored() -> None:
    assert parse_database_url("  postgresql://app@db/todos\n").url.database == "todos"


@pytest.mark.parametrize(
    "raw",
    [
        "mysql://app:pw@db/todos",
        "sqlite:///todos.db",
        "postgresql+pg8000://app:pw@db/todos",
    ],
)
def test_a_url_for_another_database_is_a_clear_error(raw: str) -> None:
    with pytest.raises(DatabaseURLError, match="must be a PostgreSQL URL"):
        parse_database_url(raw)


@pytest.mark.parametrize(
    ("raw", "complaint"),
    [
        (f"mysql://app:{PASSWORD}@db/todos", "PostgreSQL URL"),
        (f"postgresql://app:{PASSWORD}@db/todos?sslmode=sometimes", "sslmode"),
        (f"postgresql://app:{PASSWORD}@db/todos?connect_timeout=soon", "connect_timeout"),
        (f"postgresql://app:{PASSWORD}@db:54x2/todos", "not a valid URL"),
        # No "@host": the URL parser takes the password for a port and quotes it when it fails.
        (f"postgresql://app:{PASSWORD}/todos", "not a valid URL"),
        (f"definitely not a URL {PASSWORD}", "not a valid URL"),
    ],
)
def test_errors_never_reveal_the_password(raw: str, complaint: str) -> None:
    with pytest.raises(DatabaseURLError, match=complaint) as caught:
        parse_database_url(raw)

    # The whole traceback, chained causes included, is what ends up in a log.
    printed = "".join(traceback.format_exception(caught.value))
    assert PASSWORD not in printed


# --- sslmode ---------------------------------------------------------------------------


def test_without_sslmode_asyncpg_keeps_its_own_default() -> None:
    assert "ssl" not in parse_database_url("postgresql://app@db/todos").connect_args


def test_sslmode_disable_turns_tls_off() -> None:
    assert ssl_of("postgresql://app@db/todos?sslmode=disable") is False


@pytest.mark.parametrize("mode", ["allow", "prefer"])
def test_sslmode_allow_and_prefer_are_asyncpg_modes_with_plain_text_fallback(mode: str) -> None:
    assert ssl_of(f"postgresql://app@db/todos?sslmode={mode}") == mode


def test_sslmode_require_encrypts_without_verifying_the_server() -> None:
    context = ssl_of("postgresql://app@db/todos?sslmode=require")

    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_NONE
    assert context.check_hostname is False


def test_sslmode_verify_ca_checks_the_chain_but_not_the_host_name() -> None:
    context = ssl_of("postgresql://app@db/todos?sslmode=verify-ca")

    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is False


def test_sslmode_verify_full_verifies_chain_and_host_name() -> None:
    context = ssl_of("postgresql://app@db/todos?sslmode=verify-full")

    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True


def test_an_unknown_sslmode_is_a_clear_error() -> None:
    with pytest.raises(DatabaseURLError, match=r"unsupported sslmode 'required'.*verify-full"):
        parse_database_url("postgresql://app@db/todos?sslmode=required")


def test_sslrootcert_is_the_only_trusted_authority(ca_file: Path) -> None:
    context = ssl_of(f"postgresql://app@db/todos?sslmode=verify-full&sslrootcert={ca_file}")

    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    trusted = context.get_ca_certs()
    assert [dict(entry[0] for entry in ca["subject"]) for ca in trusted] == [
        {"commonName": "todo-api test CA"}
    ]


def test_sslmode_require_with_a_root_certificate_verifies_like_libpq(ca_file: Path) -> None:
    # libpq: "if a root CA file exists, sslmode=require behaves like verify-ca".
    context = ssl_of(f"postgresql://app@db/todos?sslmode=require&sslrootcert={ca_file}")

    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is False


def test_a_missing_sslrootcert_file_fails_at_start_up(tmp_path: Path) -> None:
    missing = tmp_path / "nope.crt"
    with pytest.raises(FileNotFoundError):
        parse_database_url(f"postgresql://app@db/todos?sslmode=verify-full&sslrootcert={missing}")


# --- other libpq options -------------------------------------------------------------------


def test_channel_binding_is_dropped_with_one_warning_per_process(
    fresh_process: None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="backend.db_url"):
        for _ in range(3):
            target = parse_database_url(NEON_URL)

    assert "channel_binding" not in target.url.query
    assert "channel_binding" not in target.connect_args
    warnings = [record for record in caplog.records if "channel_binding" in record.getMessage()]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING
    assert "asyncpg does not support" in warnings[0].getMessage()


def test_channel_binding_disable_needs_no_warning(
    fresh_process: None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="backend.db_url"):
        target = parse_database_url("postgresql://app@db/todos?channel_binding=disable")

    assert "channel_binding" not in target.url.query
    assert caplog.records == []


def test_connect_timeout_becomes_asyncpg_timeout() -> None:
    target = parse_database_url("postgresql://app@db/todos?connect_timeout=7")

    assert target.connect_args["timeout"] == 7.0
    assert "connect_timeout" not in target.url.query


def test_application_name_becomes_a_server_setting() -> None:
    target = parse_database_url("postgresql://app@db/todos?application_name=todo-api")

    assert target.connect_args["server_settings"] == {"application_name": "todo-api"}


def test_unknown_libpq_options_are_dropped_with_a_warning(
    fresh_process: None, caplog: pytest.LogCaptureFixture
) -> None:
    raw = "postgresql://app@db/todos?target_session_attrs=read-write&keepalives=1"
    with caplog.at_level(logging.WARNING, logger="backend.db_url"):
        target = parse_database_url(raw)

    assert dict(target.url.query) == {}
    assert target.connect_args == {}
    [warning] = caplog.records
    assert "keepalives" in warning.getMessage()
    assert "target_session_attrs" in warning.getMessage()


def test_a_unix_socket_host_option_is_kept() -> None:
    # The embedded server's URL: no host in the authority, the socket directory in ?host=.
    target = parse_database_url("postgresql://postgres:@/postgres?host=/run/postgresql")

    assert dict(target.url.query) == {"host": "/run/postgresql"}


# --- Neon ---------------------------------------------------------------------------------


def test_neon_url_keeps_its_pooler_host_and_encrypts() -> None:
    target = parse_database_url(NEON_URL)

    assert target.url.host == NEON_HOST
    assert target.url.database == "neondb"
    assert dict(target.url.query) == {}
    assert isinstance(target.connect_args["ssl"], ssl.SSLContext)


async def test_neon_url_gives_pool_arguments_asyncpg_accepts(tmp_path: Path) -> None:
    arguments = pool_arguments(NEON_URL, make_settings(NEON_URL, tmp_path))

    # create_pool passes everything it does not know itself on to connect(): bind those to
    # connect()'s real signature, where an unknown keyword is the TypeError Neon's URL caused.
    pool_only = set(inspect.signature(asyncpg.create_pool).parameters) - set(
        inspect.signature(asyncpg.connect).parameters
    )
    for_connect = {k: v for k, v in arguments.items() if k not in pool_only}
    bound = inspect.signature(asyncpg.connect).bind(**for_connect).arguments
    assert bound["host"] == NEON_HOST
    assert (bound["user"], bound["password"], bound["database"]) == ("user", "pw", "neondb")
    assert isinstance(bound["ssl"], ssl.SSLContext)
    assert not {"sslmode", "channel_binding"} & set(bound)


# --- against the real test server --------------------------------------------------------


def with_options(database_url: str, **options: str) -> str:
    url = make_url(database_url)
    return url.update_query_dict(options).render_as_string(hide_password=False)


async def ssl_in_use(database_url: str, tmp_path: Path) -> bool:
    """Whether the app's own connection to `database_url` is encrypted."""
    settings = make_settings(database_url, tmp_path)
    async with (
        app_database(database_url, settings) as database,
        database.connection() as connection,
    ):
        in_use = await connection.fetchval(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
        )
    return bool(in_use)


async def test_sslmode_prefer_connects_to_a_server_without_tls(
    database_url: str, tmp_path: Path
) -> None:
    await ssl_in_use(with_options(database_url, sslmode="prefer"), tmp_path)


async def test_sslmode_disable_connects_in_plain_text(database_url: str, tmp_path: Path) -> None:
    assert await ssl_in_use(with_options(database_url, sslmode="disable"), tmp_path) is False


async def test_neon_style_options_connect_to_a_server_without_tls(
    database_url: str, tmp_path: Path
) -> None:
    url = with_options(database_url, sslmode="prefer", channel_binding="require")
    await ssl_in_use(url, tmp_path)


async def test_sslmode_require_never_falls_back_to_plain_text(
    database_url: str, tmp_path: Path
) -> None:
    plain = with_options(database_url, sslmode="disable")
    if parse_database_url(plain).url.query.get("host"):
        pytest.skip("Unix-socket connections never use TLS")
    admin = await connect(plain)
    try:
        if await admin.fetchval("SHOW ssl") == "on":
            pytest.skip("the test server offers TLS")
    finally:
        await admin.close()

    with pytest.raises(ConnectionError):
        await ssl_in_use(with_options(database_url, sslmode="require"), tmp_path)
