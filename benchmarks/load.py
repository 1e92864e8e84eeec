"""Load generators: wrk with scenarios.lua where wrk exists (Debian's package), otherwise a
multi-process Python generator speaking raw HTTP/1.1 over asyncio streams (httpx would cost
more CPU per request than the server under test spends).

Both read the same data files (see scenarios.lua) and return a RunResult. With `delay_ms`,
each connection waits that long before each request (think time): the offered load is then
about connections / (think time + latency), the same for two servers of similar latency.
"""

import asyncio
import json
import multiprocessing
import os
import random
import re
import shutil
import subprocess
import time
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

LUA_SCRIPT = Path(__file__).resolve().parent / "scenarios.lua"
SCENARIOS = ("list", "list_q", "get", "create", "patch")


@dataclass(frozen=True)
class RunResult:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: dict[str, int]  # non-2xx answers ("status"), connection errors, timeouts

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


@dataclass(frozen=True)
class Files:
    data: Path  # tokens, todo ids, search terms
    patch: Path | None = None  # todos and versions for a patch run


def pinned(command: list[str], cpu: int | None) -> list[str]:
    return ["taskset", "-c", str(cpu), *command] if cpu is not None else command


def ensure_wrk() -> str | None:
    """Path to wrk; installs Debian's package when it is missing and we may (root, apt)."""
    if shutil.which("wrk") is None and os.geteuid() == 0 and shutil.which("apt-get"):
        print("wrk not found: installing Debian's package", flush=True)
        install = ["apt-get", "install", "-y", "-qq", "wrk"]
        if subprocess.run(install, capture_output=True, check=False).returncode != 0:
            # A fresh machine's package lists may be empty or stale.
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True, check=False)
            subprocess.run(install, capture_output=True, check=False)
    return shutil.which("wrk")


class Wrk:
    name = "wrk"

    def __init__(self, cpu: int | None) -> None:
        self.cpu = cpu
        # One load core: a second wrk thread on it would only add switching.
        self.threads = 1 if cpu is not None else 2

    def run(
        self,
        url: str,
        scenario: str,
        files: Files,
        seconds: float,
        connections: int,
        delay_ms: float = 0,
    ) -> RunResult:
        env = {
            **os.environ,
            "BENCH_SCENARIO": scenario,
            "BENCH_DATA": str(files.data),
            "BENCH_PATCH": str(files.patch or ""),
            "BENCH_THREADS": str(self.threads),
            "BENCH_DELAY_MS": f"{delay_ms:g}",
        }
        command = ["wrk", f"-t{self.threads}", f"-c{connections}", f"-d{seconds:g}s"]
        command += ["--timeout", "10s", "-s", str(LUA_SCRIPT), url]
        completed = subprocess.run(
            pinned(command, self.cpu),
            env=env,
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=True,
        )
        line = next((x for x in completed.stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
        if line is None:
            raise RuntimeError(f"wrk printed no result:\n{completed.stdout}\n{completed.stderr}")
        data = json.loads(line.removeprefix("BENCH_JSON "))
        return RunResult(
            requests=data["requests"],
            seconds=data["duration_us"] / 1e6,
            p50_ms=data["p50_us"] / 1000,
            p99_ms=data["p99_us"] / 1000,
            errors={kind: count for kind, count in data["errors"].items() if count},
        )


class PythonLoad:
    name = "python (asyncio, several processes)"

    def __init__(self, cpu: int | None, processes: int = 4) -> None:
        self.cpu = cpu
        self.processes = processes

    def run(
        self,
        url: str,
        scenario: str,
        files: Files,
        seconds: float,
        connections: int,
        delay_ms: float = 0,
    ) -> RunResult:
        shares = min(self.processes, connections)
        counts = [len(range(i, connections, shares)) for i in range(shares)]
        delay = delay_ms / 1000
        jobs = [
            (url, scenario, files, seconds, count, i, shares, delay, self.cpu)
            for i, count in enumerate(counts)
        ]
        with multiprocessing.get_context("spawn").Pool(shares) as pool:
            parts = pool.starmap(_worker, jobs)
        latencies = sorted(x for part in parts for x in array("d", part[0]))
        errors = {
            "status": sum(part[1] for part in parts),
            "socket": sum(part[3] for part in parts),
        }
        if not latencies:
            raise RuntimeError("the Python load generator got no responses")
        return RunResult(
            requests=len(latencies),
            seconds=max(part[2] for part in parts),
            p50_ms=_percentile(latencies, 0.50) * 1000,
            p99_ms=_percentile(latencies, 0.99) * 1000,
            errors={kind: count for kind, count in errors.items() if count},
        )


def _percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class _Requests:
    """The Python twin of scenarios.lua: the same choices, as raw HTTP/1.1 requests."""

    def __init__(self, scenario: str, files: Files, host: str, share: int, shares: int) -> None:
        self.scenario, self.host = scenario, host
        self.tokens: list[str] = []
        self.todos: list[tuple[int, str]] = []
        self.terms: list[str] = []
        for line in files.data.read_text().splitlines():
            kind, _, rest = line.partition(" ")
            if kind == "T":
                self.tokens.append(rest)
            elif kind == "G":
                user, todo = rest.split()
                self.todos.append((int(user), todo))
            elif kind == "Q":
                self.terms.append(rest)
        self.targets: list[tuple[int, str]] = []
        self.versions: dict[str, str] = {}
        if scenario == "patch" and files.patch:
            lines = files.patch.read_text().splitlines()
            for line in lines[share::shares]:  # disjoint shares, as the wrk threads have
                user, todo, version = line.split()
                self.targets.append((int(user), todo))
                self.versions[todo] = f'"{version}"'
        self.next_target = 0

    def _format(self, method: str, path: str, user: int, body: str = "", **headers: str) -> bytes:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}"]
        lines.append(f"Authorization: Bearer {self.tokens[user]}")
        lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
        if body:
            lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()

    def next(self) -> bytes:
        user = random.randrange(len(self.tokens))
        match self.scenario:
            case "list":
                return self._format("GET", "/todos", user)
            case "list_q":
                return self._format("GET", f"/todos?q={random.choice(self.terms)}", user)
            case "get":
                user, todo = random.choice(self.todos)
                return self._format("GET", f"/todos/{todo}", user)
            case "create":
                body = (
                    '{"title":"Buy oat milk","description":"Created by the benchmark",'
                    f'"priority":"high","due_at":"2030-01-0{random.randint(1, 9)}T09:00:00Z"}}'
                )
                return self._format("POST", "/todos", user, body)
            case "patch":
                user, todo = self.targets[self.next_target]
                self.next_target = (self.next_target + 1) % len(self.targets)
                body = random.choice(['{"completed":true}', '{"completed":false}'])
                return self._format(
                    "PATCH", f"/todos/{todo}", user, body, If_Match=self.versions[todo]
                )
        raise ValueError(self.scenario)

    def saw(self, head: bytes, body: bytes) -> None:
        if self.scenario != "patch":
            return
        todo = re.search(rb'"id":"([0-9a-f-]+)"', body)
        etag = re.search(rb"(?im)^etag: *(\S+)", head)
        if todo and etag:
            self.versions[todo.group(1).decode()] = etag.group(1).decode()


def _worker(
    url: str,
    scenario: str,
    files: Files,
    seconds: float,
    connections: int,
    share: int,
    shares: int,
    delay: float,
    cpu: int | None,
) -> tuple[bytes, int, float, int]:
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    drive = _drive(url, scenario, files, seconds, connections, share, shares, delay)
    try:
        import uvloop

        return uvloop.run(drive)
    except ImportError:
        return asyncio.run(drive)


async def _drive(
    url: str,
    scenario: str,
    files: Files,
    seconds: float,
    connections: int,
    share: int,
    shares: int,
    delay: float,
) -> tuple[bytes, int, float, int]:
    parts = urlsplit(url)
    requests = _Requests(scenario, files, parts.netloc, share, shares)
    latencies = array("d")
    errors = 0
    start = time.perf_counter()
    deadline = start + seconds

    async def connection() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        try:
            while time.perf_counter() < deadline:
                if delay:
                    await asyncio.sleep(delay)  # think time, not counted as latency
                sent = time.perf_counter()
                writer.write(requests.next())
                head = await reader.readuntil(b"\r\n\r\n")
                length = re.search(rb"(?i)content-length: *(\d+)", head)
                body = await reader.readexactly(int(length.group(1))) if length else b""
                latencies.append(time.perf_counter() - sent)
                if head[9:10] != b"2":  # "HTTP/1.1 2xx"
                    errors += 1
                requests.saw(head, body)
        finally:
            writer.close()

    outcomes: list[Any] = await asyncio.gather(
        *(connection() for _ in range(connections)), return_exceptions=True
    )
    broken = sum(isinstance(outcome, Exception) for outcome in outcomes)
    return latencies.tobytes(), errors, time.perf_counter() - start, broken
