"""Round trips over a WAN-like link: what one request costs when PostgreSQL is a few
milliseconds away (a managed database in another zone), where every round trip to the
database adds the link's latency. `uv run python -m benchmarks.latency [--link-ms 10]`.

Puts delayproxy.py (../shared/tools, beside the checkout) between each app and PostgreSQL,
then sends ONE client's requests in sequence (no concurrency: nothing queues, so the latency
is the round trips plus the CPU of one request) and reports the median per request kind, for
the API and the baseline, each with the statement cache at the API's default and at 0. Each
is measured directly too: (over the link - direct) / link ≈ the round trips per request.
"""

import argparse
import json
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

from benchmarks import seed
from benchmarks.run import (
    DEFAULT_POOL_SIZE,
    DEFAULT_STATEMENT_CACHE_SIZE,
    RESULTS_DIR,
    Seeded,
    seeded,
    server_configs,
    step,
)
from benchmarks.servers import Server, free_port, running, stop

DELAYPROXY = seed.REPO_ROOT.parent / "shared" / "tools" / "delayproxy.py"
KINDS = {
    "get": "get by id",
    "list": "list (first page)",
    "create": "create",
    "patch": "patch with If-Match",
}
NEW_TODO = {"title": "Buy oat milk", "description": "Created by the benchmark", "priority": "high"}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.latency", description=__doc__)
    parser.add_argument(
        "--link-ms", type=float, default=10.0, help="round trip added to the database (10)"
    )
    parser.add_argument("--requests", type=int, default=100, help="timed requests per kind")
    parser.add_argument("--warmup", type=int, default=10, help="untimed requests per kind first")
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--todos-per-user", type=int, default=100)
    parser.add_argument("--proxy", type=Path, default=DELAYPROXY, help="path of delayproxy.py")
    return parser.parse_args(argv)


def _wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"delayproxy exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"delayproxy not listening on {port} after 10 s")


@contextmanager
def delayed(database_url: str, link_ms: float, script: Path) -> Iterator[str]:
    """`database_url` through delayproxy.py: half the link's round trip in each direction."""
    parts = urlsplit(database_url)
    if parts.hostname not in ("127.0.0.1", "localhost"):
        raise SystemExit("delayproxy forwards to 127.0.0.1 only: use a local PostgreSQL")
    if not script.is_file():
        raise SystemExit(f"{script} not found (--proxy PATH)")
    port = free_port()
    command = [sys.executable, str(script), str(port), str(parts.port or 5432), f"{link_ms / 2:g}"]
    process = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL)
    try:
        _wait_for_port(port, process)
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@127.0.0.1:{port}" if userinfo else f"127.0.0.1:{port}"
        yield urlunsplit(parts._replace(netloc=netloc))
    finally:
        stop(process)


class Patcher:
    """PATCH {"completed": ...} with the current If-Match, flipping the value each time."""

    def __init__(self, client: httpx.Client, created: httpx.Response) -> None:
        self._client = client
        self._url, self._etag = created.headers["location"], created.headers["etag"]
        self._completed = False

    def __call__(self) -> httpx.Response:
        self._completed = not self._completed
        response = self._client.patch(
            self._url, json={"completed": self._completed}, headers={"If-Match": self._etag}
        )
        self._etag = response.headers.get("etag", self._etag)
        return response


def median_ms(call: Callable[[], httpx.Response], warmup: int, count: int) -> float:
    """Median latency of `count` calls in sequence, after `warmup` untimed ones (prepared
    statements cached, the user provisioned, the pool's connections used)."""
    for _ in range(warmup):
        call().raise_for_status()
    seconds = []
    for _ in range(count):
        started = time.perf_counter()
        response = call()
        seconds.append(time.perf_counter() - started)
        response.raise_for_status()
    return statistics.median(seconds) * 1000


def measure(server: Server, token: str, todo_id: str, args: argparse.Namespace) -> dict[str, float]:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
        created = client.post("/todos", json=NEW_TODO).raise_for_status()
        calls: dict[str, Callable[[], httpx.Response]] = {
            "get": lambda: client.get(f"/todos/{todo_id}"),
            "list": lambda: client.get("/todos"),
            "create": lambda: client.post("/todos", json=NEW_TODO),
            "patch": Patcher(client, created),
        }
        return {kind: median_ms(call, args.warmup, args.requests) for kind, call in calls.items()}


def table(results: dict[str, dict[str, dict[str, float]]], link_ms: float) -> str:
    columns = list(results)
    lines = [
        f"### Median latency, one sequential client, {link_ms:g} ms round trip to PostgreSQL",
        "",
        "ms over the link (≈ round trips: the time the link added / its round trip)",
        "",
        "| request | " + " | ".join(columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for kind, label in KINDS.items():
        cells = []
        for column in columns:
            linked, direct = results[column]["link"][kind], results[column]["direct"][kind]
            cells.append(f"{linked:.1f} (≈ {(linked - direct) / link_ms:.1f})")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def measure_app(
    app: str, cache_size: int, urls: dict[str, str], setup: Seeded, args: argparse.Namespace
) -> dict[str, dict[str, float]]:
    """Medians of one app with one statement cache size, over the link and directly (the
    difference is what the link's round trips cost)."""
    token, todo_id = setup.tokens[0], setup.dataset.sample_todos[0][1]  # user 0's todo
    medians = {}
    for path, database_url in urls.items():
        configs = server_configs(database_url, setup.jwks_url, DEFAULT_POOL_SIZE, cache_size)
        asgi, env, ready = configs[app]
        with running(f"{app}-{cache_size}-{path}", asgi, env, setup.workdir, None, ready) as server:
            medians[path] = measure(server, token, todo_id, args)
        summary = ", ".join(f"{kind} {ms:.1f} ms" for kind, ms in medians[path].items())
        step(f"{app}, statement cache {cache_size}, {path}: {summary}")
    return medians


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = datetime.now(UTC)
    results = {}
    with seeded(args.users, args.todos_per_user) as setup:
        step(f"delayproxy: {args.link_ms / 2:g} ms each way, {args.link_ms:g} ms per round trip")
        with delayed(setup.database_url, args.link_ms, args.proxy) as delayed_url:
            urls = {"link": delayed_url, "direct": setup.database_url}
            for app in ("api", "baseline"):
                for cache_size in (DEFAULT_STATEMENT_CACHE_SIZE, 0):
                    column = f"{app}, cache {cache_size}"
                    results[column] = measure_app(app, cache_size, urls, setup, args)
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"latency-{started:%Y%m%dT%H%M%SZ}.json"
    settings = vars(args) | {"proxy": str(args.proxy)}
    path.write_text(json.dumps({"settings": settings, "p50_ms": results}, indent=2) + "\n")
    print(f"\n{table(results, args.link_ms)}\n\nResults: {path.relative_to(seed.REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
