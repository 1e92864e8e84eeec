"""OS-process plumbing shared by the production tests' servers: a minimal environment for
PostgreSQL's and PgBouncer's tools, process groups that are always killed, open ports, and
temporary directories that always go away.

Everything is bounded: every wait has a timeout, every process is started in its own session
and its whole process group is killed when the test is done.
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
from pathlib import Path
from typing import Any


def minimal_env() -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "LANG": "C"}


def port_is_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


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


def cleanup_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
