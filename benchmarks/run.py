"""Issue 6's benchmark in one command: `uv run python -m benchmarks.run [--quick]`.

Seeds a fresh `todo_bench` database, starts the API and the baseline (benchmarks/baseline.py)
with one uvicorn worker pinned to one core, drives both with the same load from the other
core in alternating A/B runs, prints a markdown table of medians and writes
benchmarks/results/<timestamp>.json. See benchmarks/README.md.
"""

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from benchmarks import seed
from benchmarks.load import SCENARIOS, Files, PythonLoad, RunResult, Wrk, ensure_wrk
from benchmarks.servers import Server, running
from benchmarks.tokens import AUDIENCE, ISSUER, SigningKey, serve_jwks

RESULTS_DIR = Path(__file__).resolve().parent / "results"
# Issue 6's targets: API/baseline throughput, and p99 latency at 32 connections.
RATIO_TARGETS = {"list": 1.0, "list_q": 1.0, "get": 1.0, "create": 0.9, "patch": 1.0}
P99_TARGET_MS = 25.0
P99_SCENARIOS = ("list", "list_q", "get")
LABELS = {
    "list": "list (first page)",
    "list_q": "list with q",
    "get": "get by id",
    "create": "create",
    "patch": "patch with If-Match",
}
_START = time.monotonic()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="~1 minute smoke run: 1 round of 3 s")
    parser.add_argument("--duration", type=float, help="seconds per run (default 10, quick 3)")
    parser.add_argument("--rounds", type=int, help="A/B rounds (default 3, quick 1)")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds per scenario and app")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--todos-per-user", type=int, default=100)
    parser.add_argument(
        "--pool-size", type=int, default=32, help="database pool of each app (default: 32)"
    )
    parser.add_argument(
        "--statement-cache-size",
        type=int,
        default=0,
        help="asyncpg prepared-statement cache of each app; 0 (default) as behind Neon's pooler",
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

    def __init__(self, workdir: Path, database_url: str, users: dict[str, int]) -> None:
        self.path = workdir / "patch.txt"
        self._database_url, self._users = database_url, users
        self._previous: list[str] = []

    def __call__(self, seconds: float) -> Path:
        count = max(2000, int(seconds * 3000))  # more todos than one run can patch
        targets = asyncio.run(
            seed.patch_targets(self._database_url, self._users, count, self._previous)
        )
        self._previous = [todo for _, todo, _ in targets]
        self.path.write_text(
            "".join(f"{user} {todo} {version}\n" for user, todo, version in targets)
        )
        return self.path


def api_environment(database_url: str, jwks_url: str, args: argparse.Namespace) -> dict[str, str]:
    return {
        **seed.clean_environment(),
        "ENVIRONMENT": "production",
        "DATABASE_URL": database_url,
        "AUTO_MIGRATE": "false",
        "LOG_LEVEL": "WARNING",
        "AUTH_JWKS_URL": jwks_url,
        "AUTH_ISSUER": ISSUER,
        "AUTH_AUDIENCE": AUDIENCE,
        "DB_POOL_SIZE": str(args.pool_size),
        "DB_MAX_OVERFLOW": "0",
        "DB_STATEMENT_CACHE_SIZE": str(args.statement_cache_size),
    }


def baseline_environment(
    database_url: str, jwks_url: str, args: argparse.Namespace
) -> dict[str, str]:
    return {
        **seed.clean_environment(),
        "BASELINE_DATABASE_URL": database_url,
        "BASELINE_JWKS_URL": jwks_url,
        "BASELINE_ISSUER": ISSUER,
        "BASELINE_AUDIENCE": AUDIENCE,
        "BASELINE_POOL_SIZE": str(args.pool_size),
        "BASELINE_STATEMENT_CACHE_SIZE": str(args.statement_cache_size),
    }


def check(servers: Sequence[Server], token: str, todo_id: str) -> None:
    """One request of each kind against each app before measuring: a benchmark of 401s or
    412s would measure nothing. Also checks that both answer with the same fields."""
    headers = {"Authorization": f"Bearer {token}"}
    fields = []
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
    if len(fields) == 2 and fields[0] != fields[1]:
        print(f"warning: the apps answer with different fields: {fields}", flush=True)


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
            for server in order:
                result = bench.run(server, scenario, args.duration, args.connections)
                step(
                    f"round {round_number + 1} {scenario:7} {server.name:8} "
                    f"{result.rps:7.0f} rps  p50 {result.p50_ms:6.1f} ms  "
                    f"p99 {result.p99_ms:6.1f} ms  errors {result.errors or 'none'}"
                )
                runs.append(
                    {
                        "round": round_number + 1,
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


def summarise(runs: list[dict[str, Any]], scenarios: Sequence[str]) -> dict[str, Any]:
    """Medians over the rounds, the API/baseline ratio, and the verdict on the targets."""
    summary: dict[str, Any] = {}
    for scenario in scenarios:
        row: dict[str, Any] = {}
        for app in ("api", "baseline"):
            mine = [run for run in runs if run["scenario"] == scenario and run["app"] == app]
            row[app] = {
                key: round(statistics.median(run[key] for run in mine), 2)
                for key in ("rps", "p50_ms", "p99_ms")
            } | {"errors": sum(sum(run["errors"].values()) for run in mine)}
        ratio = row["api"]["rps"] / row["baseline"]["rps"]
        p99_ok = scenario not in P99_SCENARIOS or row["api"]["p99_ms"] < P99_TARGET_MS
        row |= {
            "ratio": round(ratio, 3),
            "ratio_target": RATIO_TARGETS[scenario],
            "p99_target_ms": P99_TARGET_MS if scenario in P99_SCENARIOS else None,
            "meets_targets": ratio >= RATIO_TARGETS[scenario] and p99_ok,
        }
        summary[scenario] = row
    return summary


def table(summary: dict[str, Any]) -> str:
    lines = [
        "| scenario | API rps | API p50 ms | API p99 ms | baseline rps | baseline p50 ms "
        "| baseline p99 ms | API/baseline | target | met |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for scenario, row in summary.items():
        api, base = row["api"], row["baseline"]
        target = f"≥ {row['ratio_target']:.1f}"
        if row["p99_target_ms"]:
            target += f", p99 < {row['p99_target_ms']:g} ms"
        lines.append(
            f"| {LABELS[scenario]} | {api['rps']:.0f} | {api['p50_ms']:.1f} | {api['p99_ms']:.1f} "
            f"| {base['rps']:.0f} | {base['p50_ms']:.1f} | {base['p99_ms']:.1f} "
            f"| {row['ratio']:.2f} | {target} | {'yes' if row['meets_targets'] else '**no**'} |"
        )
    errors = [
        f"{app} {scenario}: {row[app]['errors']} failed requests"
        for scenario, row in summary.items()
        for app in ("api", "baseline")
        if row[app]["errors"]
    ]
    if errors:
        lines.append("\nFailed requests (non-2xx or socket errors): " + "; ".join(errors))
    return "\n".join(lines)


def git_revision() -> dict[str, Any]:
    def git(*args: str) -> str:
        result = subprocess.run(
            ["git", *args], cwd=seed.REPO_ROOT, capture_output=True, text=True, check=False
        )
        return result.stdout.strip()

    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain"))}


@dataclass(frozen=True)
class Bench:
    """Everything a measurement needs, set up by `prepared`."""

    servers: list[Server]
    load: Wrk | PythonLoad
    files: Files
    server_cpu: int | None
    load_cpu: int | None
    patch_file: Callable[[float], Path]

    def run(self, server: Server, scenario: str, seconds: float, connections: int) -> RunResult:
        patch = self.patch_file(seconds) if scenario == "patch" else None
        return self.load.run(
            server.url, scenario, Files(self.files.data, patch), seconds, connections
        )


@contextmanager
def prepared(
    args: argparse.Namespace, apps: Sequence[str] = ("api", "baseline")
) -> Iterator[Bench]:
    """A seeded database, tokens, the JWKS endpoint and the servers, warmed up; all torn down
    again in reverse order (servers killed, database dropped) however the block ends."""
    # A plain `kill` of the harness still stops the servers and drops the database.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    admin_url = os.environ.get("BENCH_DATABASE_URL", seed.DEFAULT_ADMIN_URL)
    database_url = seed.bench_url(admin_url)
    server_cpu, load_cpu = choose_cpus(args.workers)
    load = choose_load(args.load, load_cpu)
    step(
        f"load generator: {load.name}; server on CPU {server_cpu}, load on CPU {load_cpu}; "
        f"{args.connections} connections"
    )
    with tempfile.TemporaryDirectory(prefix="todo-bench-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        step(f"creating database {seed.BENCH_DB}")
        asyncio.run(seed.recreate_database(admin_url))
        stack.callback(lambda: asyncio.run(seed.drop_database(admin_url)))
        stack.callback(step, f"dropping database {seed.BENCH_DB}")
        seed.migrate(database_url, workdir)
        step(f"seeding {args.users} users x {args.todos_per_user} todos")
        dataset = asyncio.run(seed.seed(database_url, args.users, args.todos_per_user))
        key = SigningKey()
        jwks_url = stack.enter_context(serve_jwks(key))
        tokens = [key.mint(user) for user in dataset.users]
        files = Files(write_data(workdir, dataset, tokens))
        users = {user.id: index for index, user in enumerate(dataset.users)}
        step(f"starting {' and '.join(apps)}")
        configs = {
            "api": ("backend.main:app", api_environment(database_url, jwks_url, args), "/readyz"),
            "baseline": (
                "benchmarks.baseline:app",
                baseline_environment(database_url, jwks_url, args),
                "/healthz",
            ),
        }
        servers = [
            stack.enter_context(running(name, app, env, workdir, server_cpu, ready, args.workers))
            for name, (app, env, ready) in configs.items()
            if name in apps
        ]
        check(servers, tokens[0], dataset.sample_todos[0][1])
        step(f"warm-up: a request for each of the {len(tokens)} users")
        visit_every_user(servers, tokens)
        yield Bench(
            servers=servers,
            load=load,
            files=files,
            server_cpu=server_cpu,
            load_cpu=load_cpu,
            patch_file=PatchTargets(workdir, database_url, users),
        )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = datetime.now(UTC)
    step(f"{args.rounds} round(s) of {args.duration:g} s per scenario and app")
    with prepared(args) as bench:
        runs = measure(args, bench)
    summary = summarise(runs, args.scenarios)
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{started:%Y%m%dT%H%M%SZ}.json"
    report = {
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
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{table(summary)}\n\nResults: {path.relative_to(seed.REPO_ROOT)}")
    if isinstance(bench.load, PythonLoad):
        print("Note: measured with the Python load generator, not wrk: rps may be understated.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
