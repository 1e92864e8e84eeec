"""PgBouncer in transaction mode (as Neon's pooler runs) in front of a PostgreSQL server, run
as the service account, with its admin console read through psql."""

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from backend.db_url import parse_database_url
from tests.production.postgres import PG_BIN, as_service_user, chown_to_service, service_tempdir
from tests.production.processes import cleanup_dir, kill_group, minimal_env, port_is_open
from tests.support import free_port


@dataclass
class PgBouncer:
    """PgBouncer in transaction mode on 127.0.0.1:port in front of `database_url`'s server."""

    base: Path
    database_url: str
    pool_size: int = 5
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def _user(self) -> str:
        return parse_database_url(self.database_url).url.username or "postgres"

    @property
    def _password(self) -> str:
        return parse_database_url(self.database_url).url.password or ""

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
            env=minimal_env(),
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
        """The pooled URL of `database`, with the same credentials as the server's URL (with
        a password, PgBouncer checks it: auth_type plain)."""
        url = parse_database_url(self.database_url).url
        pooled = url.set(
            drivername="postgresql",
            username=url.username or "postgres",
            host="127.0.0.1",
            port=self.port,
            database=database,
            query={},
        )
        return pooled.render_as_string(hide_password=False)

    def admin(self, command: str) -> list[dict[str, str]]:
        """Run a SHOW command on the admin console (simple protocol only: psql, not asyncpg)."""
        result = subprocess.run(
            [str(PG_BIN / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self._user,
             "-d", "pgbouncer", "-AF", "\t", "-P", "footer=off", "-c", command],
            env={**minimal_env(), "PGCONNECT_TIMEOUT": "5", "PGPASSWORD": self._password},
            capture_output=True,
            timeout=10,
            check=True,
        )  # fmt: skip
        header, *rows = result.stdout.decode().splitlines()
        names = header.split("\t")
        return [dict(zip(names, row.split("\t"), strict=True)) for row in rows]


@contextmanager
def running_pgbouncer(database_url: str) -> Iterator[PgBouncer]:
    if shutil.which("pgbouncer") is None:
        pytest.skip("pgbouncer is not installed (apt-get install pgbouncer; .ci/run does)")
    bouncer = PgBouncer(service_tempdir("todo-prod-pgbouncer-"), database_url)
    try:
        bouncer.start()
        yield bouncer
    finally:
        bouncer.stop()
        cleanup_dir(bouncer.base)
