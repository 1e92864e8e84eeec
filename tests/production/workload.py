"""A small load generator for the production tests: `MixedWorkload` (create / list / get /
patch / delete / stats across several users), the `Outcome` of each request, `summarize` for
status counts and `print_figure` for the measured figures."""

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx

# Clients drop idle keep-alive connections well before the server's 5 s keep-alive timeout:
# otherwise a request sent just as the server closes one fails with no response at all.
CLIENT_LIMITS = httpx.Limits(keepalive_expiry=2)


@dataclass
class Outcome:
    op: str
    status: int | None  # None: no HTTP response at all (transport error)
    started: float  # time.monotonic()
    elapsed: float
    content_type: str = ""
    retry_after: str | None = None
    error: str | None = None
    body: str = ""
    request_id: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and self.status < 400

    @property
    def finished(self) -> float:
        return self.started + self.elapsed


async def timed(op: str, call: Awaitable[httpx.Response]) -> tuple[Outcome, httpx.Response | None]:
    started = time.monotonic()
    try:
        response = await call
    except httpx.HTTPError as exc:
        elapsed = time.monotonic() - started
        return Outcome(op, None, started, elapsed, error=f"{type(exc).__name__}: {exc}"), None
    outcome = Outcome(
        op,
        response.status_code,
        started,
        time.monotonic() - started,
        content_type=response.headers.get("content-type", ""),
        retry_after=response.headers.get("retry-after"),
        body=response.text[:300] if response.status_code >= 400 else "",
    )
    return outcome, response


@dataclass
class MixedWorkload:
    """create / list / get / patch / delete / stats across several users.

    `ids` records every todo id answered 201, for the no-lost-write check.
    """

    client: httpx.AsyncClient
    headers: list[dict[str, str]]
    outcomes: list[Outcome] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    deleted: set[str] = field(default_factory=set)
    _live: dict[int, list[str]] = field(default_factory=dict)
    rng: random.Random = field(default_factory=lambda: random.Random(5))

    async def one(self) -> Outcome:
        user = self.rng.randrange(len(self.headers))
        request_id = f"load-{uuid.uuid4().hex[:16]}"
        headers = {**self.headers[user], "X-Request-ID": request_id}
        live = self._live.setdefault(user, [])
        roll = self.rng.random()
        if roll < 0.30 or not live:
            body = {"title": f"task {uuid.uuid4().hex[:8]}", "priority": "high"}
            outcome, response = await timed(
                "create", self.client.post("/todos", json=body, headers=headers)
            )
            if response is not None and response.status_code == 201:
                todo_id = response.json()["id"]
                self.ids.append(todo_id)
                live.append(todo_id)
        elif roll < 0.50:
            outcome, _ = await timed(
                "list", self.client.get("/todos", params={"limit": 10}, headers=headers)
            )
        elif roll < 0.70:
            todo_id = self.rng.choice(live)
            outcome, _ = await timed("get", self.client.get(f"/todos/{todo_id}", headers=headers))
        elif roll < 0.85:
            todo_id = self.rng.choice(live)
            outcome, _ = await timed(
                "patch",
                self.client.patch(
                    f"/todos/{todo_id}", json={"completed": self.rng.random() < 0.5},
                    headers=headers,
                ),
            )  # fmt: skip
        elif roll < 0.95:
            todo_id = live.pop(self.rng.randrange(len(live)))
            outcome, response = await timed(
                "delete", self.client.delete(f"/todos/{todo_id}", headers=headers)
            )
            if response is not None and response.status_code == 204:
                self.deleted.add(todo_id)
        else:
            outcome, _ = await timed("stats", self.client.get("/todos/stats", headers=headers))
        outcome.request_id = request_id
        self.outcomes.append(outcome)
        return outcome

    async def run(
        self,
        *,
        concurrency: int,
        total: int | None = None,
        until: Callable[[], bool] | None = None,
        pause: float = 0.0,
        deadline: float = 120.0,
    ) -> None:
        """`concurrency` loops until `total` requests were sent or `until()` is true."""
        assert total is not None or until is not None
        sent = 0
        stop_at = time.monotonic() + deadline

        async def loop() -> None:
            nonlocal sent
            while time.monotonic() < stop_at:
                if total is not None and sent >= total:
                    return
                if until is not None and until():
                    return
                sent += 1
                await self.one()
                if pause:
                    await asyncio.sleep(pause)

        await asyncio.gather(*(loop() for _ in range(concurrency)))

    @asynccontextmanager
    async def in_background(
        self, *, concurrency: int, pause: float = 0.0, deadline: float = 60.0
    ) -> AsyncIterator[None]:
        """`run` while the block runs; stopped, and waited for (30 s at most), when it ends."""
        stop = False
        load = asyncio.create_task(
            self.run(concurrency=concurrency, until=lambda: stop, pause=pause, deadline=deadline)
        )
        try:
            yield
        finally:
            stop = True
            await asyncio.wait_for(load, 30)


def summarize(outcomes: list[Outcome]) -> dict[str, int]:
    summary: dict[str, int] = {}
    for outcome in outcomes:
        key = str(outcome.status) if outcome.status is not None else "transport-error"
        summary[key] = summary.get(key, 0) + 1
    return dict(sorted(summary.items()))


def print_figure(text: str) -> None:
    """Measured figures, shown with `pytest -s` (and in the captured output on failure)."""
    print(f"[production] {text}", flush=True)
