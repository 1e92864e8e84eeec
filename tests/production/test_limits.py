"""Bounds of a real `todo-api serve` process against unauthenticated abuse: oversized headers
are refused as they arrive (431) instead of being buffered, oversized tokens are refused
unverified (401), and neither stalls anyone else (/healthz stays fast)."""

import asyncio
import socket
import time

import httpx
import psutil

from tests.production.api import ApiFactory, ApiServer
from tests.production.databases import ScratchFactory
from tests.production.workload import print_figure


def rss_mib(server: ApiServer) -> float:
    assert server.process is not None
    return float(psutil.Process(server.process.pid).memory_info().rss) / 2**20


def send_endless_header(port: int, megabytes: int) -> bytes:
    """Start a request and send `megabytes` of one header without ever finishing it; return
    whatever the server answers before it closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: ")
        chunk = b"a" * 65536
        try:
            for _ in range(megabytes * 16):
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused midway: what we want
        try:
            return sock.recv(4096)
        except (ConnectionResetError, TimeoutError):
            return b""


async def healthz_ms(client: httpx.AsyncClient) -> float:
    started = time.perf_counter()
    assert (await client.get("/healthz")).status_code == 200
    return (time.perf_counter() - started) * 1000


async def test_endless_headers_are_cut_off_without_buffering_them(
    database_url: str, scratch: ScratchFactory, api: ApiFactory
) -> None:
    server = api(await scratch(database_url))
    before = rss_mib(server)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
        attackers = [
            asyncio.to_thread(send_endless_header, server.port, megabytes=20) for _ in range(4)
        ]
        answers, latencies = await asyncio.gather(
            asyncio.gather(*attackers),
            asyncio.gather(*(healthz_ms(client) for _ in range(20))),
        )
        after = rss_mib(server)
        normal = await client.get("/healthz", headers={"X-Fine": "b" * 4000})

    print_figure(
        f"4 clients sending 20 MB headers: answered {[a.split(b' ', 2)[1] for a in answers]}, "
        f"/healthz meanwhile max {max(latencies):.1f} ms, RSS {before:.0f} -> {after:.0f} MiB"
    )
    assert all(answer.startswith(b"HTTP/1.1 431 ") for answer in answers), answers
    assert after - before < 30
    assert max(latencies) < 500
    assert normal.status_code == 200


async def test_oversized_tokens_are_refused_without_stalling_others(
    database_url: str, scratch: ScratchFactory, api: ApiFactory
) -> None:
    server = api(await scratch(database_url))
    # Under the header bound (32 KiB) but over the token bound (8 KiB): the app refuses them.
    token = "e" * 30_000
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:

        async def abuse() -> list[int]:
            statuses = []
            for _ in range(50):
                response = await client.get("/todos", headers={"Authorization": f"Bearer {token}"})
                statuses.append(response.status_code)
            return statuses

        abused, latencies = await asyncio.gather(
            asyncio.gather(*(abuse() for _ in range(4))),
            asyncio.gather(*(healthz_ms(client) for _ in range(40))),
        )

    statuses = {status for client_statuses in abused for status in client_statuses}
    print_figure(
        f"4 clients x 50 requests with 30 KB tokens: all {statuses}; "
        f"/healthz meanwhile median {sorted(latencies)[20]:.1f} ms, max {max(latencies):.1f} ms"
    )
    assert statuses == {401}
    assert max(latencies) < 500
