"""Graceful shutdown (README: Operations): on SIGTERM `todo-api serve` finishes the requests in
flight, refuses new connections, closes its pool (and the embedded PostgreSQL) and exits
within 10 seconds."""

import asyncio
import json
import os
import secrets
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import psutil

from tests.production.api import SECRET, ApiFactory, ApiServer, api_environment
from tests.production.databases import (
    CONNECT_TIMEOUT,
    ScratchFactory,
    database_name,
    with_database,
)
from tests.production.workload import print_figure
from tests.support import TokenFactory, connected

EXIT_BUDGET = 10.0


async def connections_named(database_url: str, application_name: str) -> int:
    async with connected(database_url, connect_timeout=CONNECT_TIMEOUT) as connection:
        return int(
            await connection.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                application_name,
            )
        )


def refused(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except ConnectionRefusedError:
        return True


def read_response(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def post_head(token: str, body: bytes) -> bytes:
    return (
        f"POST /todos HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()


def sigterm_during_slow_request(server: ApiServer, token: str) -> dict[str, object]:
    """Start a POST whose body arrives slowly and one whose body never completes; SIGTERM the
    server halfway through; check that new connections are refused, finish the first body, read
    its answer, and time the exit (bounded although the second request never ends)."""
    assert server.process is not None
    body = json.dumps({"title": "in flight at shutdown"}).encode()
    result: dict[str, object] = {}
    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=15) as sock,
        socket.create_connection(("127.0.0.1", server.port), timeout=15) as stuck,
    ):
        stuck.sendall(post_head(token, body) + body[:5])
        sock.sendall(post_head(token, body) + body[:10])
        time.sleep(0.3)  # the server has the headers and waits for the rest of the body
        signalled = time.monotonic()
        os.kill(server.process.pid, signal.SIGTERM)
        for _ in range(60):  # at most ~3 s
            if refused(server.port):
                result["refused_after"] = time.monotonic() - signalled
                break
            time.sleep(0.05)
        time.sleep(0.5)  # still in flight well after the signal
        sock.sendall(body[10:])
        result["response"] = read_response(sock)
        try:
            server.process.wait(EXIT_BUDGET)
        except subprocess.TimeoutExpired:
            result["exit_after"] = None
        else:
            result["exit_after"] = time.monotonic() - signalled
        result["returncode"] = server.process.returncode
        result["stuck_response"] = read_response(stuck)
    return result


async def test_sigterm_finishes_in_flight_requests_and_closes_the_pool(
    database_url: str, scratch: ScratchFactory, api: ApiFactory, tokens: TokenFactory
) -> None:
    application_name = f"todo-shutdown-{secrets.token_hex(4)}"
    url = await scratch(database_url)
    server = api(with_database(url, database_name(url), application_name=application_name))
    sub = "shutdown-user"
    token = tokens(sub)

    # Warm the pool: several connections open at once.
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
        headers = {"Authorization": f"Bearer {token}"}
        warm = await asyncio.gather(*(client.get("/todos", headers=headers) for _ in range(6)))
        assert {response.status_code for response in warm} == {200}
    pooled = await connections_named(url, application_name)
    assert pooled >= 1

    result = await asyncio.to_thread(sigterm_during_slow_request, server, token)
    remaining = await connections_named(url, application_name)
    for _ in range(40):  # a backend goes away just after its client disconnected
        if remaining == 0:
            break
        await asyncio.sleep(0.05)
        remaining = await connections_named(url, application_name)

    response = result["response"]
    assert isinstance(response, bytes)
    print_figure(
        f"SIGTERM: new connections refused after {result.get('refused_after', float('nan')):.2f}s,"
        f" in-flight POST answered {response.split(b' ', 2)[1].decode() or '?'},"
        f" a never-ending request held the exit until {result['exit_after'] or 0:.2f}s"
        f" (exit code {result['returncode']}),"
        f" pooled connections {pooled} -> {remaining}"
    )
    assert "refused_after" in result, "the server kept accepting connections after SIGTERM"
    assert response.startswith(b"HTTP/1.1 201 "), response[:500]
    created = json.loads(response.split(b"\r\n\r\n", 1)[1])
    assert result["exit_after"] is not None, f"still running {EXIT_BUDGET}s after SIGTERM"
    assert result["returncode"] in {0, -signal.SIGTERM}, server.logs()[-3000:]
    assert remaining == 0, "the pool's connections outlived the process"
    async with connected(url, connect_timeout=CONNECT_TIMEOUT) as connection:
        title = await connection.fetchval("SELECT title FROM todo WHERE id = $1", created["id"])
    assert title == "in flight at shutdown"


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "postgres" / "postmaster.pid").read_text().split()[0])


async def test_sigterm_stops_the_embedded_postgres(tmp_path: Path) -> None:
    """Without DATABASE_URL the server starts an embedded PostgreSQL; SIGTERM stops it too."""
    data_dir = tmp_path / "data"
    env = api_environment(
        environment="development", auth_secret=SECRET, data_dir=data_dir, log_json="true"
    )
    server = ApiServer(tmp_path, env, name="embedded")
    try:
        await asyncio.to_thread(server.start, 90)
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
            assert (await client.get("/readyz")).status_code == 200
        pid = postmaster_pid(data_dir)
        assert alive(pid)
        assert server.process is not None
        signalled = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(server.process.wait, EXIT_BUDGET)
        exited = time.monotonic() - signalled
        for _ in range(100):  # at most 5 s
            if not alive(pid):
                break
            await asyncio.sleep(0.05)
        stopped = time.monotonic() - signalled
        print_figure(
            f"SIGTERM with the embedded PostgreSQL: exit after {exited:.2f}s,"
            f" postmaster gone after {stopped:.2f}s"
        )
        assert exited <= EXIT_BUDGET
        assert not alive(pid), "the embedded PostgreSQL outlived the API"
    finally:
        server.stop()


async def test_sigterm_drains_first_and_drops_no_request(
    database_url: str, scratch: ScratchFactory, api: ApiFactory, tokens: TokenFactory
) -> None:
    """SIGTERM in the middle of a burst: readiness turns 503 at once, every request sent
    before or during the drain gets its answer, then new connections are refused and the
    process exits within drain + 10 s."""
    drain = 2.0
    server = api(await scratch(database_url), shutdown_drain_seconds=drain)
    assert server.process is not None
    headers = tokens.headers("drained-user")
    limits = httpx.Limits(max_connections=60, keepalive_expiry=30)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=20, limits=limits) as client:
        assert (await client.get("/readyz")).status_code == 200

        async def burst(count: int) -> list[httpx.Response]:
            return await asyncio.gather(
                *(client.post("/todos", json={"title": f"burst {n}"}, headers=headers)
                  for n in range(count))
            )  # fmt: skip

        first = asyncio.create_task(burst(50))
        await asyncio.sleep(0.05)  # the burst is on its way
        signalled = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.2)
        readyz = await client.get("/readyz")
        during = await burst(20)  # sent during the drain: still served
        answered = await first
    exited = await asyncio.to_thread(server.process.wait, drain + EXIT_BUDGET)
    took = time.monotonic() - signalled

    statuses = [response.status_code for response in [*answered, *during]]
    print_figure(
        f"SIGTERM with a {drain:g}s drain during a burst of 50 (+20 sent while draining): "
        f"{statuses.count(201)} of {len(statuses)} answered 201, /readyz {readyz.status_code} "
        f"while draining, exit after {took:.2f}s (code {exited})"
    )
    assert readyz.status_code == 503
    assert statuses == [201] * 70
    assert drain <= took <= drain + EXIT_BUDGET
    assert refused(server.port)
