"""The API itself as the production tests run it: `todo-api serve` in a subprocess with an
environment of its own (`api_environment`), its logs, and `ApiServers`, which starts them in
production mode and stops them all afterwards."""

import contextlib
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from backend.settings import Settings
from tests.production.processes import kill_group
from tests.support import free_port

# The HS256 secret of the API processes these tests start: random, so it passes any
# "looks like a placeholder" check, and can be grepped for in their logs.
SECRET = secrets.token_hex(32)


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


class ApiServers:
    """`start(database_url, workers=1, **settings)`: a started `todo-api serve` subprocess in
    production mode (HS256 tokens signed with SECRET, JSON logs, no auto-migration).
    `stop_all()` stops them."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.servers: list[ApiServer] = []

    def start(
        self, database_url: str, *, workers: int = 1, name: str = "api", **settings: object
    ) -> ApiServer:
        defaults: dict[str, object] = {
            "environment": "production",
            "database_url": database_url,
            "auth_secret": SECRET,
            "auto_migrate": "false",
            "log_json": "true",
            "data_dir": self.workdir / "data",
            # Production drains for 5 s on SIGTERM; tests that are not about shutdown stop at
            # once (tests/production/test_shutdown.py sets its own).
            "shutdown_drain_seconds": 0,
        }
        env = api_environment(**{**defaults, **settings})
        server = ApiServer(self.workdir, env, workers=workers, name=name)
        self.servers.append(server)
        return server.start()

    def stop_all(self) -> None:
        for server in self.servers:
            server.stop()


type ApiFactory = Callable[..., ApiServer]  # the `api` fixture: `ApiServers.start`
