"""How fast is `GET /todos?tag=X&tag=Y` for a user with many todos and tags, and which plan
does PostgreSQL run for it? `uv run python -m benchmarks.tag_filter`.

Seeds its own database (`todo_bench_tags`, dropped at the end): the benchmark's users (1,000 x
100 todos, 10 tags each, 0-3 on each todo) plus ONE heavy user with 10,000 todos and 50 tags,
0-4 of them on each todo (uniformly). Starts the API as the benchmark does (production
settings, one uvicorn worker pinned to core 0) and sends the heavy user's requests from ONE
keep-alive connection, in sequence (pinned to core 1): after `--warmup` untimed requests, the
median (and p90, p99) of `--requests` of each kind: the plain first page, one tag (on about 1
todo in 25), two tags (a rare pair: about 1 todo in 600 carries both), two tags in other
capitals (names ignore case), and a 51st tag, `everyday`, that the script puts on half of the
user's todos, alone and with the first tag (the filter's cost grows with the todos carrying
the tags, where the plain list reads only a page). Then `EXPLAIN (ANALYZE, BUFFERS)` of the
exact statements the API runs for the list and the filters (backend.todos.statements, the
API's arguments), prepared and executed as asyncpg runs them (a named prepared statement, so
after five executions PostgreSQL may switch to a generic plan: the plan shown is the one it
then chooses), and the indexes each uses.
Results also go to `benchmarks/results/tag-filter-<timestamp>.json`.
"""

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from backend.sql import Statement
from backend.todos import statements
from benchmarks import seed
from benchmarks.run import (
    DEFAULT_POOL_SIZE,
    DEFAULT_STATEMENT_CACHE_SIZE,
    RESULTS_DIR,
    api_environment,
    choose_cpus,
    step,
)
from benchmarks.servers import running
from benchmarks.tokens import SigningKey, serve_jwks

DATABASE = "todo_bench_tags"
PAGE = 20  # the API's default limit: the statement asks for one row more
POPULAR = "everyday"  # a tag on half of the heavy user's todos


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tag_filter", description=__doc__)
    parser.add_argument("--todos", type=int, default=10_000, help="the heavy user's todos")
    parser.add_argument("--tags", type=int, default=50, help="the heavy user's tags")
    parser.add_argument("--most-tags-per-todo", type=int, default=4)
    parser.add_argument("--other-users", type=int, default=1000, help="each 100 todos, 10 tags")
    parser.add_argument("--requests", type=int, default=200, help="timed requests per kind")
    parser.add_argument("--warmup", type=int, default=20, help="untimed requests per kind")
    return parser.parse_args(argv)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def timed(client: httpx.Client, query: str, warmup: int, count: int) -> dict[str, Any]:
    """Latency of GET /todos?<query>, one request at a time on one connection."""
    for _ in range(warmup):
        client.get(f"/todos?{query}").raise_for_status()
    seconds = []
    items = 0
    for _ in range(count):
        started = time.perf_counter()
        response = client.get(f"/todos?{query}")
        seconds.append(time.perf_counter() - started)
        response.raise_for_status()
        items = len(response.json()["items"])
    ms = [s * 1000 for s in seconds]
    return {
        "p50_ms": round(statistics.median(ms), 2),
        "p90_ms": round(percentile(ms, 0.9), 2),
        "p99_ms": round(percentile(ms, 0.99), 2),
        "items": items,
    }


def literal(value: Any) -> str:
    """An SQL literal for EXECUTE's arguments (text, a text array, or an integer)."""
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "ARRAY[" + ", ".join(literal(item) for item in value) + "]::text[]"
    return "'" + str(value).replace("'", "''") + "'"


async def explain(database_url: str, statement: Statement, **values: Any) -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS) of `statement` as asyncpg runs it: prepared once (a named
    statement), executed again and again; the plan PostgreSQL then chooses (custom or
    generic, plan_cache_mode = auto) for the next execution."""
    arguments = ", ".join(literal(value) for value in statement.args(**values))
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute(f"PREPARE measured AS {statement.sql}")
        for _ in range(10):
            await connection.execute(f"EXECUTE measured({arguments})")
        rows = await connection.fetch(f"EXPLAIN (ANALYZE, BUFFERS) EXECUTE measured({arguments})")
    finally:
        await connection.close()
    return [row[0] for row in rows]


def indexes(plan: list[str]) -> list[str]:
    return sorted({m for line in plan for m in re.findall(r" using (\w+)", line)})


async def add_popular_tag(database_url: str, user_id: str) -> None:
    """POPULAR, on every other todo of the user."""
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute(
            """WITH popular AS (
                INSERT INTO tag (id, user_id, name) VALUES (gen_random_uuid(), $1, $2)
                RETURNING id
            ), todos AS (
                SELECT id, row_number() OVER (ORDER BY id) AS n FROM todo WHERE user_id = $1
            )
            INSERT INTO todo_tag (user_id, todo_id, tag_id)
            SELECT $1, todos.id, popular.id FROM todos, popular WHERE todos.n % 2 = 0""",
            user_id,
            POPULAR,
        )
        await connection.execute("VACUUM (ANALYZE) tag, todo_tag")
    finally:
        await connection.close()


async def tag_counts(database_url: str, user_id: str, names: list[str]) -> dict[str, int]:
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(
            """SELECT tag.name, count(todo_tag.todo_id) AS todos FROM tag
            LEFT JOIN todo_tag ON todo_tag.tag_id = tag.id
            WHERE tag.user_id = $1 AND tag.name = ANY($2::text[]) GROUP BY tag.name""",
            user_id,
            names,
        )
    finally:
        await connection.close()
    return {row["name"]: row["todos"] for row in rows}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = datetime.now(UTC)
    admin_url = os.environ.get("BENCH_DATABASE_URL", seed.DEFAULT_ADMIN_URL)
    database_url = seed.bench_url(admin_url, DATABASE)
    server_cpu, client_cpu = choose_cpus(1)
    names = seed.tag_names(args.tags)
    first, second = names[0], names[1]
    queries = {
        "list (first page)": "",
        "one tag": f"tag={first}",
        "two tags": f"tag={first}&tag={second}",
        "two tags, other capitals": f"tag={first.upper()}&tag={second.title()}",
        "popular tag": f"tag={POPULAR}",
        "popular and one tag": f"tag={POPULAR}&tag={first}",
    }
    with tempfile.TemporaryDirectory(prefix="todo-bench-tags-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        stack.enter_context(seed.migrated_database(admin_url, DATABASE, workdir, step))
        step(
            f"seeding 1 user x {args.todos} todos, {args.tags} tags, 0-"
            f"{args.most_tags_per_todo} per todo; {args.other_users} users x 100 todos"
        )
        heavy = asyncio.run(
            seed.seed(
                database_url,
                1,
                args.todos,
                tags_per_user=args.tags,
                most_tags_per_todo=args.most_tags_per_todo,
            )
        ).users[0]
        if args.other_users:
            asyncio.run(seed.seed(database_url, args.other_users, 100, first_user=1))
        asyncio.run(add_popular_tag(database_url, heavy.id))
        counts = asyncio.run(tag_counts(database_url, heavy.id, [first, second, POPULAR]))
        step(f"todos per tag: {counts}")
        key = SigningKey()
        jwks_url = stack.enter_context(serve_jwks(key))
        env = api_environment(
            database_url, jwks_url, DEFAULT_POOL_SIZE, DEFAULT_STATEMENT_CACHE_SIZE
        )
        api = running("api", "backend.main:app", env, workdir, server_cpu, "/readyz")
        server = stack.enter_context(api)
        if client_cpu is not None:
            os.sched_setaffinity(0, {client_cpu})
        step(f"API on CPU {server_cpu}, client on CPU {client_cpu}; one keep-alive connection")
        latency = {}
        headers = {"Authorization": f"Bearer {key.mint(heavy)}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
            for label, query in queries.items():
                latency[label] = timed(client, query, args.warmup, args.requests)
                result = latency[label]
                step(
                    f"GET /todos?{query}: p50 {result['p50_ms']} ms, p90 {result['p90_ms']} ms, "
                    f"p99 {result['p99_ms']} ms ({result['items']} items)"
                )
        plans = {}
        plain = statements.page(frozenset(), "-created_at", None)
        tagged = statements.page(frozenset({"tags"}), "-created_at", None)
        plans["list"] = asyncio.run(explain(database_url, plain, user_id=heavy.id, limit=PAGE + 1))
        plans["two tags"] = asyncio.run(
            explain(database_url, tagged, user_id=heavy.id, tags=[first, second], limit=PAGE + 1)
        )
        plans["one tag"] = asyncio.run(
            explain(database_url, tagged, user_id=heavy.id, tags=[first], limit=PAGE + 1)
        )
        plans["popular tag"] = asyncio.run(
            explain(database_url, tagged, user_id=heavy.id, tags=[POPULAR], limit=PAGE + 1)
        )
    print("\n| request | p50 ms | p90 ms | p99 ms | items |\n|---|---:|---:|---:|---:|")
    for label, result in latency.items():
        print(
            f"| GET /todos?{queries[label]} | {result['p50_ms']} | {result['p90_ms']} | "
            f"{result['p99_ms']} | {result['items']} |"
        )
    for label, plan in plans.items():
        print(f"\n### EXPLAIN (ANALYZE, BUFFERS): {label}\nindexes: {', '.join(indexes(plan))}\n")
        print("\n".join(plan))
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"tag-filter-{started:%Y%m%dT%H%M%SZ}.json"
    result = {
        "settings": vars(args),
        "todos_per_tag": counts,
        "latency": {queries[label]: value for label, value in latency.items()},
        "plans": plans,
        "statement": tagged.sql,
    }
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nResults: {path.relative_to(seed.REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
