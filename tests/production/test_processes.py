"""Several processes on one database (README: Scaling): two API instances, one of them
with two uvicorn workers, keep the If-Match, Idempotency-Key and provisioning guarantees; two
`todo-api migrate` release steps started at once both succeed under the advisory lock."""

import asyncio
import contextlib
import os
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from backend.migrations import head_revisions
from tests.production.api import ApiServer, ApiServers, api_environment, todo_api_command
from tests.production.databases import CONNECT_TIMEOUT, ScratchDatabases, ScratchFactory
from tests.production.processes import kill_group
from tests.production.workload import print_figure
from tests.support import TokenFactory, connected


@pytest.fixture(scope="module")
async def instances(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[list[ApiServer]]:
    """Shared by this module's race tests (each uses its own users): A with two workers, B.
    Started one after the other: two starts at once on two cores only cost time."""
    workdir = tmp_path_factory.mktemp("instances")
    databases, servers = ScratchDatabases(workdir), ApiServers(workdir)
    try:
        url = await databases.create(database_url)
        yield [servers.start(url, workers=2, name="a"), servers.start(url, name="b")]
    finally:
        servers.stop_all()
        await databases.drop_all()


@pytest.fixture
async def clients(instances: list[ApiServer]) -> AsyncIterator[list[httpx.AsyncClient]]:
    # One connection per request: with keep-alive, uvicorn's workers would not share them.
    limits = httpx.Limits(max_keepalive_connections=0)
    async with (
        httpx.AsyncClient(base_url=instances[0].base_url, timeout=20, limits=limits) as a,
        httpx.AsyncClient(base_url=instances[1].base_url, timeout=20, limits=limits) as b,
    ):
        yield [a, b]


async def test_if_match_race_across_processes(
    clients: list[httpx.AsyncClient], tokens: TokenFactory
) -> None:
    headers = tokens.headers()
    created = await clients[0].post("/todos", json={"title": "contended"}, headers=headers)
    assert created.status_code == 201, created.text
    todo_id, etag = created.json()["id"], created.headers["etag"]

    responses = await asyncio.gather(
        *(
            clients[index % 2].patch(
                f"/todos/{todo_id}",
                json={"title": f"writer {index}"},
                headers={**headers, "If-Match": etag},
            )
            for index in range(10)
        )
    )
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] + [412] * 9, statuses
    final = await clients[1].get(f"/todos/{todo_id}", headers=headers)
    winner = next(response for response in responses if response.status_code == 200)
    assert final.json()["title"] == winner.json()["title"]
    assert final.json()["version"] == created.json()["version"] + 1


async def test_idempotency_key_race_across_processes(
    clients: list[httpx.AsyncClient], tokens: TokenFactory
) -> None:
    headers = {**tokens.headers(), "Idempotency-Key": f'"{uuid.uuid4()}"'}
    body = {"title": "exactly once"}
    responses = await asyncio.gather(
        *(clients[index % 2].post("/todos", json=body, headers=headers) for index in range(8))
    )
    statuses = [response.status_code for response in responses]
    assert set(statuses) <= {201, 409}, statuses  # 409: the first one still in flight
    ids = {response.json()["id"] for response in responses if response.status_code == 201}
    assert len(ids) == 1, ids
    listed = await clients[0].get("/todos", params={"limit": 100}, headers=headers)
    assert [item["title"] for item in listed.json()["items"]] == ["exactly once"]
    # A retry after the dust settled replays the same todo, on either instance.
    for client in clients:
        replay = await client.post("/todos", json=body, headers=headers)
        assert replay.status_code == 201
        assert replay.headers["idempotent-replayed"] == "true"
        assert replay.json()["id"] in ids


async def test_first_requests_of_new_users_in_parallel(
    clients: list[httpx.AsyncClient], tokens: TokenFactory
) -> None:
    """Provisioning race: a new user's first requests arrive at once on all processes."""
    outcomes: list[int] = []
    for _ in range(4):
        sub = f"new-{uuid.uuid4().hex[:10]}"
        headers = tokens.headers(sub, name="New User")
        calls = [
            clients[index % 2].get("/users/me", headers=headers)
            if index % 3
            else clients[index % 2].post("/todos", json={"title": "first"}, headers=headers)
            for index in range(10)
        ]
        responses = await asyncio.gather(*calls)
        outcomes += [response.status_code for response in responses]
        for response in responses:
            assert response.status_code in {200, 201}, response.text
        me = await clients[0].get("/users/me", headers=headers)
        assert me.json()["id"] == sub
    assert set(outcomes) <= {200, 201}, summarize_statuses(outcomes)


def summarize_statuses(statuses: list[int]) -> dict[int, int]:
    return {status: statuses.count(status) for status in sorted(set(statuses))}


def migrate_concurrently(env: dict[str, str], workdir: Path, count: int) -> list[int | None]:
    """`count` `todo-api migrate` processes started at once; their exit codes."""
    processes = [
        subprocess.Popen(
            [*todo_api_command(), "migrate"],
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=(workdir / f"migrate-{index}.out").open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        for index in range(count)
    ]
    try:
        for process in processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(60)
    finally:
        for process in processes:
            kill_group(process, timeout=1)
    return [process.returncode for process in processes]


async def test_two_migrations_at_once_on_a_fresh_database(
    database_url: str, scratch: ScratchFactory, tmp_path: Path
) -> None:
    url = await scratch(database_url, migrated=False)
    env = api_environment(environment="production", database_url=url, data_dir=tmp_path)
    started = time.monotonic()
    codes = await asyncio.to_thread(migrate_concurrently, env, tmp_path, 2)
    elapsed = time.monotonic() - started
    outputs = [(tmp_path / f"migrate-{index}.out").read_text() for index in range(2)]
    print_figure(f"two concurrent `todo-api migrate`: exit codes {codes} in {elapsed:.1f}s")
    assert codes == [0, 0], outputs

    async with connected(url, connect_timeout=CONNECT_TIMEOUT) as connection:
        versions = await connection.fetch("SELECT version_num FROM alembic_version")
        tables = {
            row["tablename"]
            for row in await connection.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            )
        }
    assert {row["version_num"] for row in versions} == set(head_revisions())
    assert {"todo", "user", "idempotency_key"} <= tables


def worker_pids(server: ApiServer) -> list[int]:
    return [
        int(record["event"].split("[", 1)[1].rstrip("]"))
        for record in server.log_records()
        if str(record.get("event", "")).startswith("Started server process [")
    ]


async def test_the_supervisor_of_several_workers_logs_json(instances: list[ApiServer]) -> None:
    events = [str(record.get("event", "")) for record in instances[0].log_records()]
    assert any(event.startswith("Started parent process [") for event in events), events


async def test_a_killed_worker_is_replaced(
    instances: list[ApiServer], tokens: TokenFactory
) -> None:
    """Last in this module: it kills one of instance A's two workers (as the OOM killer
    would); the supervisor starts another and the instance keeps answering."""
    server = instances[0]
    before = worker_pids(server)
    assert len(before) == 2, before  # --workers 2 really runs two processes
    os.kill(before[0], signal.SIGKILL)
    for _ in range(200):  # at most ~10 s
        if len(worker_pids(server)) == 3:
            break
        await asyncio.sleep(0.05)
    after = worker_pids(server)
    assert len(after) == 3, after
    headers = tokens.headers()
    async with httpx.AsyncClient(
        base_url=server.base_url, timeout=10, limits=httpx.Limits(max_keepalive_connections=0)
    ) as client:
        responses = await asyncio.gather(*(client.get("/todos", headers=headers) for _ in range(8)))
    assert {response.status_code for response in responses} == {200}
    print_figure(f"killed worker {before[0]}; replaced by {after[2]}; 8/8 requests answered 200")
