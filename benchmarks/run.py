"""The benchmark in one command: `uv run python -m benchmarks.run [--quick]`.

Seeds a fresh `todo_bench` database, starts the API (with its production defaults) and the
baseline (benchmarks/baseline.py) with one uvicorn worker pinned to one core, drives both with
the same load from the other core in alternating A/B runs, twice per scenario: at saturation
(closed loop) and at an equal offered load below capacity (think time per connection). Then
reads each server's memory and the sessions it opened on PostgreSQL, prints markdown tables of
medians and the targets, and writes benchmarks/results/<timestamp>.json. See
benchmarks/README.md.
"""

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from backend.settings import Settings
from benchmarks import report, seed
from benchmarks.load import SCENARIOS, Files, PythonLoad, RunResult, Wrk, ensure_wrk
from benchmarks.servers import Server, running
from benchmarks.tokens import AUDIENCE, ISSUER, SigningKey, serve_jwks

RESULTS_DIR = Path(__file__).resolve().parent / "results"
# The API's own defaults, read from its settings so that they cannot drift: the benchmark
# runs the API as a production user gets it, and gives the baseline the same.
DEFAULT_POOL_SIZE: int = Settings.model_fields["db_pool_size"].default
DEFAULT_STATEMENT_CACHE_SIZE: int = Settings.model_fields["db_statement_cache_size"].default
# Think time per connection in the equal-load phase: 32 connections / (40 ms + latency)
# ≈ 750 requests/s, below what either app serves at saturation.
DEFAULT_DELAY_MS = float(os.environ.get("BENCH_DELAY_MS", "40"))
_START = time.monotonic()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 round of 3 s")
    parser.add_argument("--duration", type=float, help="seconds per run (default 10, quick 3)")
    parser.add_argument("--rounds", type=int, help="A/B rounds (default 3, quick 1)")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds per scenario and app")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--delay-ms",
        type=float,
        default=DEFAULT_DELAY_MS,
        help="think time per connection in the equal-load phase "
        f"(default: $BENCH_DELAY_MS, else 40; now {DEFAULT_DELAY_MS:g})",
    )
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--todos-per-user", type=int, default=100)
    parser.add_argument(
        "--pool-size",
        type=int,
        default=DEFAULT_POOL_SIZE,
        help=f"database pool of each app (default: the API's, {DEFAULT_POOL_SIZE})",
    )
    parser.add_argument(
        "--statement-cache-size",
        type=int,
        default=DEFAULT_STATEMENT_CACHE_SIZE,
        help="asyncpg prepared-statement cache of each app "
        f"(default: the API's, {DEFAULT_STATEMENT_CACHE_SIZE}; 0 as behind a pooler without "
        "prepared statements)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="uvicorn workers per app; above 1 nothing is pinned (for the scale story)",
    )
    parser.add_argument("--load", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--scenarios", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    args = parser.parse_args(argv)
    args.duration = args.duration or (3.0 if args.quick else 10.0)
    args.rounds = args.rounds or (1 if args.quick else 3)
    return args


def step(message: str) -> None:
    print(f"[{time.monotonic() - _START:6.1f} s] {message}", flush=True)


def choose_cpus(workers: int) -> tuple[int | None, int | None]:
    """Server on one core, load generator on another, where taskset and two cores exist."""
    cpus = sorted(os.sched_getaffinity(0))
    if shutil.which("taskset") is None or len(cpus) < 2 or workers > 1:
        return None, None
    return cpus[0], cpus[1]


def choose_load(kind: str, cpu: int | None) -> Wrk | PythonLoad:
    if kind != "python" and ensure_wrk():
        return Wrk(cpu)
    if kind == "wrk":
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    if kind == "auto":
        print("wrk not found and not installable: using the Python load generator", flush=True)
    return PythonLoad(cpu)


def write_data(workdir: Path, dataset: seed.Dataset, tokens: list[str]) -> Path:
    """Tokens for every user, todos for GET, search terms: the format scenarios.lua reads."""
    lines = [f"T {token}" for token in tokens]
    lines += [f"G {user} {todo}" for user, todo in dataset.sample_todos]
    lines += [f"Q {term}" for term in seed.SEARCH_TERMS]
    path = workdir / "data.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


class PatchTargets:
    """Writes the todos for a patch run with their current versions, so every If-Match is
    current. The previous run's todos are left out: when wrk stops, the server still finishes
    the requests in flight, which may change a version after we read it."""

    def __init__(self, workdir: Path, probe: seed.Probe, users: dict[str, int]) -> None:
        self.path = workdir / "patch.txt"
        self._probe, self._users = probe, users
        self._previous: list[str] = []

    def __call__(self, seconds: float) -> Path:
        count = max(2000, int(seconds * 3000))  # more todos than one run can patch
        targets = self._probe.patch_targets(self._users, count, self._previous)
        self._previous = [todo for _, todo, _ in targets]
        self.path.write_text(
            "".join(f"{user} {todo} {version}\n" for user, todo, version in targets)
        )
        return self.path


def api_environment(
    database_url: str, jwks_url: str, pool_size: int, statement_cache_size: int
) -> dict[str, str]:
    """The API as a production user runs it: ENVIRONMENT=production and the JWKS settings,
    nothing else. Log level, access log, migrations and the pool keep their defaults; the
    pool settings are passed only when the options differ from those defaults."""
    env = {
        **seed.clean_environment(),
        "ENVIRONMENT": "production",
        "DATABASE_URL": database_url,
        "AUTH_JWKS_URL": jwks_url,
        "AUTH_ISSUER": ISSUER,
        "AUTH_AUDIENCE": AUDIENCE,
    }
    if pool_size != DEFAULT_POOL_SIZE:
        env["DB_POOL_SIZE"] = str(pool_size)
    if statement_cache_size != DEFAULT_STATEMENT_CACHE_SIZE:
        env["DB_STATEMENT_CACHE_SIZE"] = str(statement_cache_size)
    return env


def baseline_environment(
    database_url: str, jwks_url: str, pool_size: int, statement_cache_size: int
) -> dict[str, str]:
    """Always explicit: the baseline gets the API's pool size and statement cache size."""
    return {
        **seed.clean_environment(),
        "BASELINE_DATABASE_URL": database_url,
        "BASELINE_JWKS_URL": jwks_url,
        "BASELINE_ISSUER": ISSUER,
        "BASELINE_AUDIENCE": AUDIENCE,
        "BASELINE_POOL_SIZE": str(pool_size),
        "BASELINE_STATEMENT_CACHE_SIZE": str(statement_cache_size),
    }


def server_configs(
    database_url: str, jwks_url: str, pool_size: int, statement_cache_size: int
) -> dict[str, tuple[str, dict[str, str], str]]:
    """Per app: its ASGI app, its environment and its readiness path."""
    settings = (database_url, jwks_url, pool_size, statement_cache_size)
    return {
        "api": ("backend.main:app", api_environment(*settings), "/readyz"),
        "baseline": ("benchmarks.baseline:app", baseline_environment(*settings), "/healthz"),
    }


def check(servers: Sequence[Server], token: str, todo_id: str) -> None:
    """One request of each kind against each app before measuring: a benchmark of 401s or
    412s would measure nothing. Also checks that both answer with the same fields, the same
    todo alike (tags included), and that the todos listed carry tags, as the seed gives them."""
    headers = {"Authorization": f"Bearer {token}"}
    fields, todos = [], []
    for server in servers:
        with httpx.Client(base_url=server.url, headers=headers, timeout=10) as client:
            page = client.get("/todos")
            _expect(server, page, 200)
            _expect(server, client.get("/todos", params={"q": "report"}), 200)
            got = client.get(f"/todos/{todo_id}")
            _expect(server, got, 200)
            created = client.post("/todos", json={"title": "Check the benchmark"})
            _expect(server, created, 201)
            url, etag = created.headers["location"], created.headers["etag"]
            changed = client.patch(url, json={"completed": True}, headers={"If-Match": etag})
            _expect(server, changed, 200)
            stale = client.patch(url, json={"completed": False}, headers={"If-Match": etag})
            _expect(server, stale, 412)
            fields.append(
                (sorted(page.json()), sorted(page.json()["items"][0]), sorted(got.json()))
            )
            todos.append(got.json())
            if not any(todo["tags"] for todo in page.json()["items"]):
                print(f"warning: {server.name} lists no todo with tags", flush=True)
    if len(fields) == 2 and fields[0] != fields[1]:
        print(f"warning: the apps answer with different fields: {fields}", flush=True)
    elif len(todos) == 2 and todos[0] != todos[1]:
        print(f"warning: the apps answer with different todos: {todos}", flush=True)


def visit_every_user(servers: Sequence[Server], tokens: list[str]) -> None:
    """One request per user and app: the API provisions a user's row on first sight of their
    token, once per process. The benchmark measures the steady state after that."""

    async def visit(server: Server) -> None:
        gate = asyncio.Semaphore(16)
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:

            async def one(token: str) -> None:
                async with gate:
                    headers = {"Authorization": f"Bearer {token}"}
                    response = await client.get("/todos", params={"limit": 1}, headers=headers)
                    _expect(server, response, 200)

            await asyncio.gather(*(one(token) for token in tokens))

    for server in servers:
        asyncio.run(visit(server))


def _expect(server: Server, response: httpx.Response, status: int) -> None:
    if response.status_code != status:
        raise RuntimeError(
            f"{server.name}: {response.request.method} {response.request.url.path} gave "
            f"{response.status_code}, expected {status}: {response.text[:500]}"
        )


def git_revision() -> dict[str, Any]:
    def git(*args: str) -> str:
        result = subprocess.run(
            ["git", *args], cwd=seed.REPO_ROOT, capture_output=True, text=True, check=False
        )
        return result.stdout.strip()

    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain"))}


def phases(args: argparse.Namespace) -> dict[str, float]:
    """Think time per connection of each phase: none (saturation), then the equal load."""
    return {"saturation": 0.0, "equal_load": args.delay_ms}


def measure(args: argparse.Namespace, bench: "Bench") -> list[dict[str, Any]]:
    step(f"warm-up: {args.warmup:g} s per scenario and app")
    for server in bench.servers:
        for scenario in args.scenarios:
            bench.run(server, scenario, args.warmup, args.connections)
    runs = []
    for round_number in range(args.rounds):
        for scenario in args.scenarios:
            # A/B, then B/A next round: drift on a shared machine hits both apps alike.
            order = bench.servers if round_number % 2 == 0 else bench.servers[::-1]
            for phase, delay_ms in phases(args).items():
                for server in order:
                    result = bench.run(server, scenario, args.duration, args.connections, delay_ms)
                    step(
                        f"round {round_number + 1} {phase:10} {scenario:7} {server.name:8} "
                        f"{result.rps:7.0f} rps  p50 {result.p50_ms:6.1f} ms  "
                        f"p99 {result.p99_ms:6.1f} ms  errors {result.errors or 'none'}"
                    )
                    runs.append(
                        {
                            "round": round_number + 1,
                            "phase": phase,
                            "delay_ms": delay_ms,
                            "scenario": scenario,
                            "app": server.name,
                            "requests": result.requests,
                            "seconds": round(result.seconds, 3),
                            "rps": round(result.rps, 1),
                            "p50_ms": round(result.p50_ms, 2),
                            "p99_ms": round(result.p99_ms, 2),
                            "errors": result.errors,
                        }
                    )
    return runs


ACCESS_LOG_MARK = '"logger": "backend.access"'


def processes(bench: "Bench") -> dict[str, dict[str, Any]]:
    """After all runs, while the servers still run: each one's memory, the sessions it opened
    on PostgreSQL during its runs, and how many access-log lines it wrote."""
    result = {}
    for server in bench.servers:
        log = server.log.read_text(errors="replace")
        result[server.name] = {
            "rss_mib": round(server.rss_bytes() / 2**20, 1),
            "new_sessions": bench.new_sessions.get(server.name, 0),
            "access_log_lines": log.count(ACCESS_LOG_MARK),
        }
    return result


@dataclass
class Bench:
    """Everything a measurement needs, set up by `prepared`. Counts, per app, the sessions
    PostgreSQL saw opened while that app's load ran (the apps take turns, and the harness
    queries on one long-lived connection, so every new session is the running app's)."""

    servers: list[Server]
    load: Wrk | PythonLoad
    files: Files
    server_cpu: int | None
    load_cpu: int | None
    patch_file: Callable[[float], Path]
    probe: seed.Probe
    new_sessions: dict[str, int] = field(default_factory=dict)

    def run(
        self,
        server: Server,
        scenario: str,
        seconds: float,
        connections: int,
        delay_ms: float = 0,
    ) -> RunResult:
        patch = self.patch_file(seconds) if scenario == "patch" else None
        before = self.probe.sessions()
        result = self.load.run(
            server.url, scenario, Files(self.files.data, patch), seconds, connections, delay_ms
        )
        opened = self.probe.sessions() - before
        self.new_sessions[server.name] = self.new_sessions.get(server.name, 0) + opened
        return result


@dataclass(frozen=True)
class Seeded:
    """A seeded bench database and the credentials to use it."""

    workdir: Path
    admin_url: str
    database_url: str
    jwks_url: str
    dataset: seed.Dataset
    tokens: list[str]


@contextmanager
def seeded(users: int, todos_per_user: int) -> Iterator[Seeded]:
    """A fresh, migrated and seeded database, a token per user and the JWKS endpoint; torn
    down again (the database dropped) however the block ends."""
    # A plain `kill` of the harness still stops the servers and drops the database.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    admin_url = os.environ.get("BENCH_DATABASE_URL", seed.DEFAULT_ADMIN_URL)
    database_url = seed.bench_url(admin_url)
    with tempfile.TemporaryDirectory(prefix="todo-bench-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        stack.enter_context(seed.migrated_database(admin_url, seed.BENCH_DB, workdir, step))
        step(f"seeding {users} users x {todos_per_user} todos")
        dataset = asyncio.run(seed.seed(database_url, users, todos_per_user))
        key = SigningKey()
        jwks_url = stack.enter_context(serve_jwks(key))
        tokens = [key.mint(user) for user in dataset.users]
        yield Seeded(workdir, admin_url, database_url, jwks_url, dataset, tokens)


@contextmanager
def prepared(
    args: argparse.Namespace, apps: Sequence[str] = ("api", "baseline")
) -> Iterator[Bench]:
    """A seeded database, tokens, the JWKS endpoint and the servers, warmed up; all torn down
    again in reverse order (servers killed, database dropped) however the block ends."""
    server_cpu, load_cpu = choose_cpus(args.workers)
    load = choose_load(args.load, load_cpu)
    step(
        f"load generator: {load.name}; server on CPU {server_cpu}, load on CPU {load_cpu}; "
        f"{args.connections} connections"
    )
    with seeded(args.users, args.todos_per_user) as setup, ExitStack() as stack:
        probe = seed.Probe(setup.database_url)
        stack.callback(probe.close)
        files = Files(write_data(setup.workdir, setup.dataset, setup.tokens))
        users = {user.id: index for index, user in enumerate(setup.dataset.users)}
        step(f"starting {' and '.join(apps)}")
        configs = server_configs(
            setup.database_url, setup.jwks_url, args.pool_size, args.statement_cache_size
        )
        api_settings = set(configs["api"][1]) - set(seed.clean_environment())
        step(f"API settings: {', '.join(sorted(api_settings))}; the rest at their defaults")
        servers = [
            stack.enter_context(
                running(name, app, env, setup.workdir, server_cpu, ready, args.workers)
            )
            for name, (app, env, ready) in configs.items()
            if name in apps
        ]
        check(servers, setup.tokens[0], setup.dataset.sample_todos[0][1])
        step(f"warm-up: a request for each of the {len(setup.tokens)} users")
        visit_every_user(servers, setup.tokens)
        yield Bench(
            servers=servers,
            load=load,
            files=files,
            server_cpu=server_cpu,
            load_cpu=load_cpu,
            patch_file=PatchTargets(setup.workdir, probe, users),
            probe=probe,
        )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = datetime.now(UTC)
    step(
        f"{args.rounds} round(s) of {args.duration:g} s per scenario, app and phase "
        f"(saturation; equal load at {args.delay_ms:g} ms think time)"
    )
    with prepared(args) as bench:
        runs = measure(args, bench)
        apps = processes(bench)
    summary = report.summarise(runs, args.scenarios, apps)
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{started:%Y%m%dT%H%M%SZ}.json"
    result = {
        "started_at": started.isoformat(),
        "git": git_revision(),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "server_cpu": bench.server_cpu,
            "load_cpu": bench.load_cpu,
            "load_generator": bench.load.name,
        },
        "settings": vars(args),
        "runs": runs,
        "summary": summary,
    }
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\n{report.render(summary, args)}\n\nResults: {path.relative_to(seed.REPO_ROOT)}")
    if isinstance(bench.load, PythonLoad):
        print("Note: measured with the Python load generator, not wrk: rps may be understated.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
