"""PgBouncer in transaction mode (as Neon's pooler runs) in front of a PostgreSQL server, run
as the service account, with its admin console read through psql."""

import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from backend.db_url import parse_database_url
from tests.production.postgres import PG_BIN, as_service_user, chown_to_service
from tests.production.processes import kill_group, minimal_env, port_is_open
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
        user = parse_database_url(self.database_url).url.username or "postgres"
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    def admin(self, command: str) -> list[dict[str, str]]:
        """Run a SHOW command on the admin console (simple protocol only: psql, not asyncpg)."""
        result = subprocess.run(
            [str(PG_BIN / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
             "-d", "pgbouncer", "-AF", "\t", "-P", "footer=off", "-c", command],
            env={**minimal_env(), "PGCONNECT_TIMEOUT": "5"},
            capture_output=True,
            timeout=10,
            check=True,
        )  # fmt: skip
        header, *rows = result.stdout.decode().splitlines()
        names = header.split("\t")
        return [dict(zip(names, row.split("\t"), strict=True)) for row in rows]
