"""Live updates (GET /events): how soon a committed change reaches the streams of its user,
across two API instances, and how much memory an open stream costs.
`uv run python -m benchmarks.events [--quick]`.

Seeds its own database (`todo_bench_events`, dropped at the end) and starts two API instances
as the benchmark does (production settings, one uvicorn worker each, both on core 0; this
client on core 1), twice: in LISTEN mode (DATABASE_DIRECT_URL set: instances tell each other
about commits with NOTIFY) and in polling mode (unset: each instance asks the database for
its streams' heads every EVENTS_POLL_SECONDS, 1 s by default). Each time it opens two streams
per user (one on each instance: 200 for 100 users) from this one process (raw asyncio
sockets, a minimal HTTP/1.1 client), and a writer POSTs todos through instance A at a steady
rate for random users. Every write must reach both of its user's streams: the one on A (the
writer's instance: woken in-process) and the one on B (woken by NOTIFY, or by its poll).

Latency is the time the event arrived on a stream minus the time the write's HTTP response
arrived (the API answers right after its commit, so this is about commit-to-delivery; it can
be slightly negative, as the event may overtake the response), and also minus the time the
request was sent. Missing deliveries are counted (they must be 0).

Then, in LISTEN mode, memory: the VmRSS of instance A's worker process (/proc/<pid>/status)
with no stream open and with `--memory-streams` idle streams (2 per user), and the difference
per stream. Results also go to `benchmarks/results/events-<timestamp>.json`.
"""

import argparse
import asyncio
import json
import math
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psutil

from benchmarks import seed
from benchmarks.run import (
    DEFAULT_POOL_SIZE,
    DEFAULT_STATEMENT_CACHE_SIZE,
    RESULTS_DIR,
    api_environment,
    choose_cpus,
    git_revision,
    step,
    visit_every_user,
)
from benchmarks.servers import Server, running
from benchmarks.tokens import SigningKey, serve_jwks

DATABASE = "todo_bench_events"
MODES = ("listen", "poll")
OPEN_CONCURRENCY = 25  # streams being opened at once
STREAMS_PER_USER_FOR_MEMORY = 2  # the API allows 5 per user and process
SETTLE_SECONDS = 1.5  # before each memory reading


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.events", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smoke run: 5 s of writes")
    parser.add_argument("--users", type=int, default=100, help="users with 2 streams each")
    parser.add_argument("--rate", type=float, default=20.0, help="writes per second")
    parser.add_argument("--seconds", type=float, help="seconds of writes per mode (15, quick 5)")
    parser.add_argument(
        "--grace", type=float, default=5.0, help="seconds to wait for late deliveries"
    )
    parser.add_argument(
        "--memory-streams", type=int, default=500, help="idle streams for the memory reading"
    )
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    args = parser.parse_args(argv)
    args.seconds = args.seconds or (5.0 if args.quick else 15.0)
    return args


# --- A lean SSE client: one asyncio connection per stream, HTTP/1.1, chunked body ----------


@dataclass
class Stream:
    """One open GET /events: when each todo's event arrived on it (time.perf_counter())."""

    user: int
    instance: str
    arrivals: dict[str, float] = field(default_factory=dict)
    duplicates: int = 0
    other_events: int = 0
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    ended: str | None = None  # why it ended before the benchmark closed it
    _writer: asyncio.StreamWriter | None = None
    _task: asyncio.Task[None] | None = None

    async def open(self, url: str, token: str) -> None:
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        reader, self._writer = await asyncio.open_connection(host, port)
        self._writer.write(
            (
                f"GET /events HTTP/1.1\r\nHost: {host}:{port}\r\n"
                f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
            ).encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        if status != 200:
            raise RuntimeError(f"GET /events on {self.instance}: {head.decode(errors='replace')}")
        chunked = b"transfer-encoding: chunked" in head.lower()
        self._task = asyncio.create_task(self._read(reader, chunked))
        async with asyncio.timeout(30):
            await self.ready.wait()  # the first block (the `retry:` hint) has come

    async def _read(self, reader: asyncio.StreamReader, chunked: bool) -> None:
        buffer = b""
        try:
            while True:
                if chunked:
                    size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        break
                    data = (await reader.readexactly(size + 2))[:-2]
                else:
                    data = await reader.read(65536)
                    if not data:
                        break
                arrived = time.perf_counter()
                buffer += data
                while b"\n\n" in buffer:
                    block, buffer = buffer.split(b"\n\n", 1)
                    self._block(block, arrived)
            self.ended = "the server ended the stream"
        except (OSError, asyncio.IncompleteReadError, ValueError) as error:
            self.ended = f"{type(error).__name__}: {error}"

    def _block(self, block: bytes, arrived: float) -> None:
        self.ready.set()
        if not block.startswith(b"event: todo\n"):
            return  # the retry hint, a heartbeat
        data = json.loads(block.rpartition(b"\ndata: ")[2])
        if data["op"] != "upsert":
            self.other_events += 1
            return
        todo_id = data["todo"]["id"]
        if todo_id in self.arrivals:
            self.duplicates += 1
        else:
            self.arrivals[todo_id] = arrived

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._writer is not None:
            self._writer.close()
            with suppress(OSError):
                await self._writer.wait_closed()


async def open_streams(specs: list[tuple[int, Server, str]]) -> list[Stream]:
    """A stream per (user, server, token), `OPEN_CONCURRENCY` being opened at a time."""
    gate = asyncio.Semaphore(OPEN_CONCURRENCY)
    streams = [Stream(user, server.name) for user, server, _ in specs]

    async def one(stream: Stream, server: Server, token: str) -> None:
        async with gate:
            await stream.open(server.url, token)

    await asyncio.gather(
        *(
            one(stream, server, token)
            for stream, (_, server, token) in zip(streams, specs, strict=True)
        )
    )
    return streams


async def close_streams(streams: list[Stream]) -> None:
    await asyncio.gather(*(stream.close() for stream in streams))


# --- The writer ---------------------------------------------------------------------------


@dataclass
class Write:
    user: int
    sent: float
    answered: float = math.nan
    todo_id: str | None = None
    error: str | None = None


async def write_steadily(
    server: Server, tokens: list[str], users: int, rate: float, seconds: float
) -> list[Write]:
    """POST /todos for a random user every 1/rate s (open loop: a slow answer does not delay
    the next write), through `server`."""
    rng = random.Random(13)
    writes: list[Write] = []
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=server.url, timeout=30, limits=limits) as client:

        async def one(write: Write, number: int) -> None:
            headers = {"Authorization": f"Bearer {tokens[write.user]}"}
            try:
                body = {"title": f"Live update {number}", "priority": "medium"}
                response = await client.post("/todos", json=body, headers=headers)
                write.answered = time.perf_counter()
                if response.status_code != 201:
                    write.error = f"{response.status_code} {response.text[:200]}"
                else:
                    write.todo_id = response.json()["id"]
            except httpx.HTTPError as error:
                write.error = f"{type(error).__name__}: {error}"

        tasks = []
        start = time.perf_counter()
        for number in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, start + number / rate - time.perf_counter()))
            write = Write(user=rng.randrange(users), sent=time.perf_counter())
            writes.append(write)
            tasks.append(asyncio.create_task(one(write, number)))
        await asyncio.gather(*tasks)
    return writes


# --- Measurements -------------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def summary_ms(seconds: list[float]) -> dict[str, float | None]:
    if not seconds:
        return {"p50_ms": None, "p99_ms": None, "max_ms": None}
    return {
        "p50_ms": round(statistics.median(seconds) * 1000, 2),
        "p99_ms": round(percentile(seconds, 0.99) * 1000, 2),
        "max_ms": round(max(seconds) * 1000, 2),
    }


def expected_deliveries(writes: list[Write], streams: list[Stream]) -> int:
    by_user: dict[int, int] = {}
    for stream in streams:
        by_user[stream.user] = by_user.get(stream.user, 0) + 1
    return sum(by_user.get(write.user, 0) for write in writes if write.todo_id)


async def wait_for_deliveries(writes: list[Write], streams: list[Stream], grace: float) -> float:
    """Until every write reached every stream of its user, or `grace` s passed; the wait."""
    started = time.perf_counter()
    expected = expected_deliveries(writes, streams)
    while time.perf_counter() - started < grace:
        if sum(len(stream.arrivals) for stream in streams) >= expected:
            break
        await asyncio.sleep(0.05)
    return time.perf_counter() - started


def latency_report(
    writes: list[Write], streams: list[Stream], writer_instance: str
) -> dict[str, Any]:
    """Per write and stream of its user: arrival - response, arrival - send; misses."""
    by_user: dict[int, list[Stream]] = {}
    for stream in streams:
        by_user.setdefault(stream.user, []).append(stream)
    groups: dict[str, dict[str, list[float]]] = {
        name: {"from_response": [], "from_send": []} for name in ("all", "same", "other")
    }
    missing = {"same": 0, "other": 0}
    written = {write.todo_id for write in writes if write.todo_id}
    for write in writes:
        if write.todo_id is None:
            continue
        for stream in by_user.get(write.user, []):
            where = "same" if stream.instance == writer_instance else "other"
            arrived = stream.arrivals.get(write.todo_id)
            if arrived is None:
                missing[where] += 1
                continue
            for name in ("all", where):
                groups[name]["from_response"].append(arrived - write.answered)
                groups[name]["from_send"].append(arrived - write.sent)
    unexpected = sum(
        1 for stream in streams for todo_id in stream.arrivals if todo_id not in written
    )
    return {
        "writes": len(writes),
        "failed_writes": sum(1 for write in writes if write.error),
        "write_errors": sorted({write.error for write in writes if write.error})[:5],
        "expected_deliveries": expected_deliveries(writes, streams),
        "delivered": len(groups["all"]["from_response"]),
        "missing": missing["same"] + missing["other"],
        "missing_on_writer_instance": missing["same"],
        "missing_on_other_instance": missing["other"],
        "duplicates": sum(stream.duplicates for stream in streams),
        "unexpected": unexpected,
        "streams_ended_early": sorted({s.ended for s in streams if s.ended}),
        "latency": {
            name: {kind: summary_ms(values) for kind, values in group.items()}
            for name, group in groups.items()
        },
    }


def worker_pid(server: Server) -> int:
    """The uvicorn process that serves (with --workers 1 the server's process itself)."""
    root = psutil.Process(server.pid)
    workers = [child for child in root.children(recursive=True) if "python" in child.name()]
    return int(workers[-1].pid) if workers else int(root.pid)


def vm_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])  # "VmRSS:   123456 kB"
    raise RuntimeError(f"no VmRSS in /proc/{pid}/status")


async def memory_per_stream(server: Server, tokens: list[str], count: int) -> dict[str, Any]:
    """VmRSS of `server`'s worker with no stream, with `count` idle ones, after closing them;
    then the same again: a second round that needs no more memory than the first shows that
    closed streams leave nothing behind (the first round's memory stays with the process)."""
    pid = worker_pid(server)
    users = math.ceil(count / STREAMS_PER_USER_FOR_MEMORY)
    specs = [(user % users, server, tokens[user % users]) for user in range(count)]
    await asyncio.sleep(SETTLE_SECONDS)  # the last requests' garbage gone
    readings = {"without_streams": vm_rss_kib(pid)}
    ended: set[str] = set()
    for round_number in (1, 2):
        streams = await open_streams(specs)
        await asyncio.sleep(SETTLE_SECONDS)
        readings[f"with_streams_{round_number}"] = vm_rss_kib(pid)
        ended |= {stream.ended for stream in streams if stream.ended}
        await close_streams(streams)
        await asyncio.sleep(SETTLE_SECONDS)
        readings[f"after_closing_{round_number}"] = vm_rss_kib(pid)
    growth = readings["with_streams_1"] - readings["without_streams"]
    return {
        "streams": count,
        "users": users,
        "rss_kib": readings,
        "kib_per_stream": round(growth / count, 2),
        "second_round_growth_kib": readings["with_streams_2"] - readings["with_streams_1"],
        "streams_ended_early": sorted(ended),
    }


# --- Orchestration ------------------------------------------------------------------------


@dataclass(frozen=True)
class Setup:
    workdir: Path
    database_url: str
    jwks_url: str
    tokens: list[str]
    server_cpu: int | None


@contextmanager
def seeded(users: int) -> Iterator[Setup]:
    """Its own database with `users` users (10 todos each), a token per user and the JWKS
    endpoint; the database dropped however the block ends."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    admin_url = os.environ.get("BENCH_DATABASE_URL", seed.DEFAULT_ADMIN_URL)
    database_url = seed.bench_url(admin_url, DATABASE)
    with tempfile.TemporaryDirectory(prefix="todo-bench-events-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        stack.enter_context(seed.migrated_database(admin_url, DATABASE, workdir, step))
        step(f"seeding {users} users x 10 todos")
        dataset = asyncio.run(seed.seed(database_url, users, 10))
        key = SigningKey()
        jwks_url = stack.enter_context(serve_jwks(key))
        tokens = [key.mint(user, lifetime=3600) for user in dataset.users]
        server_cpu, client_cpu = choose_cpus(1)
        if client_cpu is not None:
            os.sched_setaffinity(0, {client_cpu})
        step(f"API instances on CPU {server_cpu}, this client on CPU {client_cpu}")
        yield Setup(workdir, database_url, jwks_url, tokens, server_cpu)


@contextmanager
def instances(setup: Setup, mode: str) -> Iterator[tuple[Server, Server]]:
    """Two API instances (A and B) on the database, as a production user runs them; in
    LISTEN mode with DATABASE_DIRECT_URL, else without it (polling)."""
    env = api_environment(
        setup.database_url, setup.jwks_url, DEFAULT_POOL_SIZE, DEFAULT_STATEMENT_CACHE_SIZE
    )
    if mode == "listen":
        env["DATABASE_DIRECT_URL"] = setup.database_url
    with ExitStack() as stack:
        servers = tuple(
            stack.enter_context(
                running(
                    f"api-{mode}-{name}",
                    "backend.main:app",
                    env,
                    setup.workdir,
                    setup.server_cpu,
                    "/readyz",
                )
            )
            for name in ("a", "b")
        )
        yield servers[0], servers[1]


async def measure_mode(
    mode: str, a: Server, b: Server, setup: Setup, args: argparse.Namespace
) -> dict[str, Any]:
    specs = [(user, server, setup.tokens[user]) for user in range(args.users) for server in (a, b)]
    opened = time.perf_counter()
    streams = await open_streams(specs)
    step(f"{mode}: {len(streams)} streams open in {time.perf_counter() - opened:.1f} s")
    try:
        step(f"{mode}: writing {args.rate:g}/s for {args.seconds:g} s through {a.name}")
        writes = await write_steadily(a, setup.tokens, args.users, args.rate, args.seconds)
        waited = await wait_for_deliveries(writes, streams, args.grace)
        result = latency_report(writes, streams, a.name)
        result["waited_after_last_write_s"] = round(waited, 2)
    finally:
        await close_streams(streams)
    latency = result["latency"]
    step(
        f"{mode}: {result['delivered']}/{result['expected_deliveries']} delivered, "
        f"{result['missing']} missing, {result['failed_writes']} failed writes; from the "
        f"response p50 {latency['all']['from_response']['p50_ms']} ms, "
        f"p99 {latency['all']['from_response']['p99_ms']} ms"
    )
    return result


def log_problems(server: Server) -> list[str]:
    """The server's log lines at WARNING or above (JSON log: "level")."""
    lines = server.log.read_text(errors="replace").splitlines()
    return [
        line[:300]
        for line in lines
        if '"level": "warning"' in line or '"level": "error"' in line or "Traceback" in line
    ]


def table(results: dict[str, Any], args: argparse.Namespace) -> str:
    lines = [
        f"### Event latency: 2 instances, {args.users * 2} streams ({args.users} users x 2, one "
        f"on each instance), {args.rate:g} writes/s for {args.seconds:g} s through instance A",
        "",
        "ms from the write's response (commit) to the event on the stream; "
        "in brackets: from sending the write",
        "",
        "| mode | streams | p50 | p99 | max | delivered | missing |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    groups = {
        "all": ("all", "missing"),
        "same": ("on A (the writer's)", "missing_on_writer_instance"),
        "other": ("on B (the other)", "missing_on_other_instance"),
    }
    for mode, result in results.items():
        if mode == "memory":
            continue
        for group, (label, missing) in groups.items():
            response = result["latency"][group]["from_response"]
            send = result["latency"][group]["from_send"]
            delivered = f"{result['delivered']}/{result['expected_deliveries']}"
            lines.append(
                f"| {mode} | {label} | {response['p50_ms']} ({send['p50_ms']}) | "
                f"{response['p99_ms']} ({send['p99_ms']}) | {response['max_ms']} | "
                f"{delivered if group == 'all' else ''} | {result[missing]} |"
            )
    memory = results.get("memory")
    if memory:
        lines += [
            "",
            f"### Memory of instance A's worker (VmRSS), {memory['streams']} idle streams "
            f"({memory['users']} users)",
            "",
            "| no streams | with the streams | after closing them | again with the streams "
            "| after closing them | per stream |",
            "|---:|---:|---:|---:|---:|---:|",
            "| "
            + " | ".join(f"{kib / 1024:.1f} MiB" for kib in memory["rss_kib"].values())
            + f" | {memory['kib_per_stream']} KiB |",
        ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = datetime.now(UTC)
    memory_users = math.ceil(args.memory_streams / STREAMS_PER_USER_FOR_MEMORY)
    results: dict[str, Any] = {}
    problems: dict[str, list[str]] = {}
    with seeded(max(args.users, memory_users)) as setup:
        for mode in args.modes:
            step(f"{mode}: starting instances A and B")
            with instances(setup, mode) as (a, b):
                step(f"{mode}: a request per user on each instance (provisioning)")
                visit_every_user([a, b], setup.tokens)
                results[mode] = asyncio.run(measure_mode(mode, a, b, setup, args))
                if mode == "listen" and args.memory_streams:
                    step(f"memory: {args.memory_streams} idle streams on {a.name}")
                    results["memory"] = asyncio.run(
                        memory_per_stream(a, setup.tokens, args.memory_streams)
                    )
                    memory = results["memory"]
                    step(
                        f"memory: VmRSS (KiB) {memory['rss_kib']}: "
                        f"{memory['kib_per_stream']} KiB per stream"
                    )
                for server in (a, b):
                    problems[server.name] = log_problems(server)
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"events-{started:%Y%m%dT%H%M%SZ}.json"
    output = {
        "started_at": started.isoformat(),
        "git": git_revision(),
        "machine": {"cpus": os.cpu_count(), "server_cpu": setup.server_cpu},
        "settings": vars(args),
        "results": results,
        "server_log_warnings": problems,
    }
    path.write_text(json.dumps(output, indent=2) + "\n")
    print(f"\n{table(results, args)}\n\nResults: {path.relative_to(seed.REPO_ROOT)}")
    for name, lines in problems.items():
        if lines:
            print(
                f"\n{name} logged {len(lines)} warning(s)/error(s), e.g.:\n" + "\n".join(lines[:3])
            )
    missing = sum(result["missing"] for mode, result in results.items() if mode != "memory")
    if missing:
        print(f"\nFAIL: {missing} deliveries missing")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
