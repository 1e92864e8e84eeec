"""The `todo-api` command and `uvicorn backend.main:app` as real processes, with no
configuration beyond a data directory and a port (README: Quick start, Deploying).

Slow by nature (each server starts its own embedded PostgreSQL), so kept to the few cases that
only a real process can show: start-up from nothing, clean shutdown on SIGTERM with several
workers, and the release-step migration.
"""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil
import pytest
from asgi_lifespan import LifespanManager

from backend import migrations
from backend.main import create_app
from tests.support import connect, free_port, make_settings

BIN = Path(sys.executable).parent
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0


def clean_env(**settings: str) -> dict[str, str]:
    """Nothing of the caller's configuration (DATABASE_URL, AUTH_*, ...): only what a
    newcomer's shell has, plus `settings`."""
    env = {"PATH": os.environ["PATH"], "HOME": str(Path.home())}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(settings)
    return env


def postmasters(pgdata: Path) -> list[psutil.Process]:
    return [
        process
        for process in psutil.process_iter(["name", "cmdline"])
        if process.info["name"] == "postgres" and str(pgdata) in (process.info["cmdline"] or [])
    ]


def session_members(session_id: int) -> list[psutil.Process]:
    """Processes still in the session the server was started in (its workers, helpers)."""
    members = []
    for process in psutil.process_iter():
        try:
            if os.getsid(process.pid) == session_id:
                members.append(process)
        except (ProcessLookupError, PermissionError):
            continue
    return members


def wait_for(condition: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return bool(condition())


@contextmanager
def server_process(
    args: list[str], env: dict[str, str], workdir: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `args` in its own session; whatever happens, kill what is left of it and of the
    embedded PostgreSQL in its DATA_DIR."""
    log_path = workdir / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            args, env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            for member in session_members(process.pid):
                member.kill()
            for postmaster in postmasters(Path(env["DATA_DIR"], "postgres").resolve()):
                postmaster.terminate()


def log_of(workdir: Path) -> str:
    return (workdir / "server.log").read_text(errors="replace")[-4000:]


def wait_until_serving(
    client: httpx.Client, process: subprocess.Popen[bytes], workdir: Path
) -> None:
    def healthy() -> bool:
        assert process.poll() is None, f"the server exited early:\n{log_of(workdir)}"
        try:
            return client.get("/healthz").status_code == 200
        except httpx.TransportError:
            return False

    assert wait_for(healthy, START_TIMEOUT, 0.25), f"not serving:\n{log_of(workdir)}"


def holder_pids(pgdata: Path) -> list[int]:
    """Processes registered with the embedded server (the package's list)."""
    try:
        return list(json.loads((pgdata / ".handle_pids.json").read_text()))
    except (FileNotFoundError, json.JSONDecodeError):
        return []


@pytest.mark.parametrize(
    ("command", "workers"),
    [
        (["todo-api", "serve"], 1),
        (["todo-api", "serve", "--workers", "2"], 2),
        (["uvicorn", "backend.main:app", "--port", "{port}"], 1),
    ],
    ids=["serve", "serve-2-workers", "uvicorn"],
)
def test_with_no_configuration_it_serves_on_embedded_postgres_and_stops_cleanly(
    tmp_path: Path, command: list[str], workers: int
) -> None:
    port = free_port()
    data_dir = tmp_path / "data"
    pgdata = (data_dir / "postgres").resolve()
    args = [str(BIN / command[0]), *(part.format(port=port) for part in command[1:])]
    env = clean_env(DATA_DIR=str(data_dir), PORT=str(port))

    with server_process(args, env, tmp_path) as process:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            wait_until_serving(client, process, tmp_path)
            # Migrations were applied at start-up: ready at once.
            assert client.get("/readyz").status_code == 200
            docs = client.get("/docs")
            assert docs.status_code == 200
            assert "swagger" in docs.text.lower()
            assert client.get("/openapi.json").json()["info"]["title"] == "Todo API"

        # Every worker registered with one and the same server.
        assert wait_for(
            lambda: len({pid for pid in holder_pids(pgdata) if psutil.pid_exists(pid)}) == workers,
            START_TIMEOUT,
        ), f"holders {holder_pids(pgdata)}:\n{log_of(tmp_path)}"
        assert len(postmasters(pgdata)) == 1

        process.send_signal(signal.SIGTERM)
        try:
            returncode = process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running {STOP_TIMEOUT} s after SIGTERM:\n{log_of(tmp_path)}")

        assert returncode in (0, -signal.SIGTERM), log_of(tmp_path)
        assert wait_for(lambda: not postmasters(pgdata), 2.0), (
            f"embedded PostgreSQL outlived the API:\n{log_of(tmp_path)}"
        )
        assert wait_for(lambda: not session_members(process.pid), 2.0), session_members(process.pid)


async def test_readyz_is_503_until_todo_api_migrate_brings_the_schema_to_head(
    scratch_url: str, tmp_path: Path
) -> None:
    """Production: AUTO_MIGRATE off, the release step runs `todo-api migrate`; until it has,
    the instance reports itself not ready."""
    app = create_app(make_settings(scratch_url, tmp_path, auto_migrate=False))
    transport = httpx.ASGITransport(app=app)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=transport, base_url="http://test") as client,
    ):
        behind = await client.get("/readyz")
        assert behind.status_code == 503
        assert behind.headers["content-type"] == "application/problem+json"
        assert behind.json()["status"] == 503
        assert "Retry-After" in behind.headers

        migrate = await asyncio.to_thread(
            subprocess.run,
            [str(BIN / "todo-api"), "migrate"],
            env=clean_env(DATABASE_URL=scratch_url, DATA_DIR=str(tmp_path)),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT,
            check=False,
        )
        assert migrate.returncode == 0, migrate.stdout + migrate.stderr

        connection = await connect(scratch_url)
        try:
            assert await migrations.schema_is_current(connection)
        finally:
            await connection.close()
        assert (await client.get("/readyz")).status_code == 200
