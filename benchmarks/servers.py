"""Start and stop the servers under test. Each runs in its own session (process group), so
one killpg ends it and anything it spawned, whatever state the harness is in."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from benchmarks.load import pinned
from benchmarks.seed import REPO_ROOT


@dataclass(frozen=True)
class Server:
    name: str
    url: str
    pid: int
    log: Path  # the server's stdout and stderr (the API's JSON log lines)

    def rss_bytes(self) -> int:
        """Resident memory of the server's whole process tree (uvicorn with --workers 1 is one
        process; with more, the supervisor and its workers)."""
        root = psutil.Process(self.pid)
        return sum(process.memory_info().rss for process in [root, *root.children(recursive=True)])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def uvicorn_command(app: str, port: int, workers: int) -> list[str]:
    """The same uvicorn for both apps (uvloop and httptools, when installed, by default).
    uvicorn's own access log is off, as `todo-api serve` turns it off: the API writes its own
    (JSON, one line per request, at the default log level) to the log file instead."""
    return [
        *(sys.executable, "-m", "uvicorn", app, "--app-dir", str(REPO_ROOT)),
        *("--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)),
        "--no-access-log",
    ]


@contextmanager
def running(
    name: str,
    app: str,
    env: dict[str, str],
    workdir: Path,
    cpu: int | None,
    ready_path: str = "/healthz",
    workers: int = 1,
) -> Iterator[Server]:
    port = free_port()
    log = workdir / f"{name}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            pinned(uvicorn_command(app, port, workers), cpu),
            env=env,
            cwd=workdir,  # no stray .env from the developer's checkout
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_until_ready(process, url + ready_path, log)
        yield Server(name=name, url=url, pid=process.pid, log=log)
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited during the benchmark:\n{_tail(log)}")
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return  # the whole group is gone
        try:
            process.wait(grace)
            return
        except subprocess.TimeoutExpired:
            continue


def _wait_until_ready(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{_tail(log)}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server not ready at {url} after 60 s:\n{_tail(log)}")


def _tail(log: Path, lines: int = 30) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
