"""GET /events (Server-Sent Events) end to end, against real `todo-api serve` processes on
scratch databases: delivery across instances by LISTEN/NOTIFY (also behind PgBouncer in
transaction mode) and by polling, resuming with Last-Event-ID, heartbeats, reminders fired
once however many instances watch, the per-user stream limit, the end of streams on SIGTERM
and on token expiry, and that a stream carries its own user's changes only.

Settings are short (polls of 0.2 s, heartbeats of 1 s) so the whole module takes well under a
minute and a half; every wait is bounded (tests.production.events)."""

import asyncio
import contextlib
import itertools
import secrets
import signal
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from backend.sync import tokens as sync_tokens
from backend.sync.records import Position
from tests.production.api import ApiFactory, ApiServer
from tests.production.databases import (
    CONNECT_TIMEOUT,
    ScratchFactory,
    database_name,
    with_database,
)
from tests.production.events import EventStream, Record, StreamEnded, open_stream, refused
from tests.production.pgbouncer import PgBouncer
from tests.production.workload import print_figure
from tests.support import TokenFactory, bearer, connected

FAST_POLL = 0.2  # s: polling mode, and the reminder tests
SLOW_POLL = 30.0  # s: LISTEN mode, where only a notification can deliver within a second
LISTEN_LIMIT = 1.0  # s from a write on one instance to its event on another, by NOTIFY
POLL_LIMIT = 1.5  # s, by a poll every FAST_POLL s (generous: the machine is shared)
PROBLEM_JSON = "application/problem+json"
LISTENING = "events: listening for changes of other instances"


# Helpers.


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@asynccontextmanager
async def writer(server: ApiServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
        yield client


async def create(client: httpx.AsyncClient, headers: Mapping[str, str], **fields: Any) -> Any:
    response = await client.post("/todos", json=fields, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def update(
    client: httpx.AsyncClient, headers: Mapping[str, str], todo_id: str, **fields: Any
) -> Any:
    response = await client.patch(f"/todos/{todo_id}", json=fields, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def delete(client: httpx.AsyncClient, headers: Mapping[str, str], todo_id: str) -> None:
    response = await client.delete(f"/todos/{todo_id}", headers=headers)
    assert response.status_code == 204, response.text


async def feed(client: httpx.AsyncClient, headers: Mapping[str, str], since: str) -> Any:
    response = await client.get("/todos/changes", params={"since": since}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def started(stream: EventStream) -> Record:
    """The stream's first record: the `retry:` hint it begins with."""
    assert stream.status_code == 200, stream.response.text
    first = await stream.next(5)
    assert first.is_retry, first
    return first


async def logged(server: ApiServer, event: str, within: float = 10) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if any(record.get("event") == event for record in server.log_records()):
            return True
        await asyncio.sleep(0.05)
    return False


def positions(user_id: str, records: list[Record]) -> list[Position]:
    found = []
    for record in records:
        assert record.id is not None
        assert len(record.id) == 39, record
        position, ours = sync_tokens.decode(user_id, record.id)
        assert ours, record
        found.append(position)
    return found


def assert_problem(response: httpx.Response, status: int, slug: str) -> Any:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers
    body = response.json()
    assert body["status"] == status
    assert body["type"].endswith(f"#{slug}"), body
    return body


async def round_trip(
    source: ApiServer, target: ApiServer, user_id: str, headers: Mapping[str, str]
) -> list[float]:
    """Create, update and delete a todo through `source` while a stream of the same user is
    open on `target`; check each event (kind, id, data) and return the delivery latencies
    (from the moment each write was sent)."""
    latencies: list[float] = []
    async with writer(source) as client, open_stream(target.base_url, headers) as stream:
        await started(stream)

        sent = time.monotonic()
        created = await create(client, headers, title="from the other instance")
        [upserted] = await stream.events(1, within=10)
        latencies.append(upserted.at - sent)

        sent = time.monotonic()
        updated = await update(client, headers, created["id"], title="renamed", priority="high")
        [renamed] = await stream.events(1, within=10)
        latencies.append(renamed.at - sent)

        sent = time.monotonic()
        await delete(client, headers, created["id"])
        [deleted] = await stream.events(1, within=10)
        latencies.append(deleted.at - sent)

        events = [upserted, renamed, deleted]
        assert [event.event for event in events] == ["todo"] * 3
        assert upserted.json() == {"op": "upsert", "todo": created}
        assert renamed.json() == {"op": "upsert", "todo": updated}
        assert updated["version"] > created["version"]
        assert deleted.json() == {"op": "delete", "id": created["id"]}
        # Every id is a sync token of this user's, in log order, and the feed agrees with it.
        ordered = positions(user_id, events)
        assert ordered == sorted(ordered), ordered
        assert len(set(ordered)) == 3, ordered
        assert (await feed(client, headers, upserted.id or ""))["changes"] == [deleted.json()]
        rest = await feed(client, headers, deleted.id or "")
        assert rest["changes"] == []
        assert rest["more"] is False
    return latencies


# 1-3. Delivery across instances.


async def test_listen_mode_delivers_changes_across_instances_at_once(
    database_url: str, scratch: ScratchFactory, api: ApiFactory, tokens: TokenFactory
) -> None:
    """Two instances with a direct URL and a 30 s poll: a change made through A reaches a
    stream on B within a second, which only A's NOTIFY can do."""
    url = await scratch(database_url)
    settings = {"database_direct_url": url, "events_poll_seconds": SLOW_POLL}
    a = api(url, name="a", **settings)
    b = api(url, name="b", **settings)
    assert await logged(a, LISTENING)
    assert await logged(b, LISTENING)

    latencies = await round_trip(a, b, "listen-user", tokens.headers("listen-user"))

    print_figure(
        "events, LISTEN mode (poll 30 s): create/update/delete on A reached a stream on B in "
        + ", ".join(f"{latency * 1000:.0f} ms" for latency in latencies)
    )
    assert max(latencies) < LISTEN_LIMIT, latencies


async def test_polling_mode_delivers_changes_across_instances(
    database_url: str, scratch: ScratchFactory, api: ApiFactory, tokens: TokenFactory
) -> None:
    """Without a direct URL the instances do not LISTEN; a poll every 0.2 s still brings a
    change made through A to a stream on B promptly."""
    url = await scratch(database_url)
    a = api(url, name="a", events_poll_seconds=FAST_POLL)
    b = api(url, name="b", events_poll_seconds=FAST_POLL)

    latencies = await round_trip(a, b, "poll-user", tokens.headers("poll-user"))

    print_figure(
        f"events, polling mode (poll {FAST_POLL:g} s): create/update/delete on A reached a "
        "stream on B in " + ", ".join(f"{latency * 1000:.0f} ms" for latency in latencies)
    )
    assert max(latencies) < POLL_LIMIT, latencies
    assert not any(record.get("event") == LISTENING for record in b.log_records())


async def test_listen_mode_behind_pgbouncer_in_transaction_mode(
    pgbouncer: PgBouncer,
    database_url: str,
    scratch: ScratchFactory,
    api: ApiFactory,
    tokens: TokenFactory,
) -> None:
    """Requests through PgBouncer in transaction mode (which cannot carry LISTEN), the one
    LISTEN connection per instance on the direct URL: cross-instance changes still arrive
    within a second with a 30 s poll."""
    url = await scratch(database_url)
    name = database_name(url)
    listener_name = f"todo-events-{secrets.token_hex(4)}"
    direct = with_database(url, name, application_name=listener_name)
    settings = {
        "db_statement_cache_size": 0,  # PgBouncer 1.18: no prepared statements
        "database_direct_url": direct,
        "events_poll_seconds": SLOW_POLL,
    }
    a = api(pgbouncer.url(name), name="a", **settings)
    b = api(pgbouncer.url(name), name="b", **settings)
    assert await logged(a, LISTENING)
    assert await logged(b, LISTENING)

    latencies = await round_trip(a, b, "bouncer-user", tokens.headers("bouncer-user"))

    async with connected(url, connect_timeout=CONNECT_TIMEOUT) as connection:
        listeners = await connection.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", listener_name
        )
    stats = next(row for row in pgbouncer.admin("SHOW STATS") if row["database"] == name)
    print_figure(
        "events behind PgBouncer (transaction mode), LISTEN on the direct URL: delivered in "
        + ", ".join(f"{latency * 1000:.0f} ms" for latency in latencies)
        + f"; {stats['total_xact_count']} transactions through PgBouncer"
    )
    assert max(latencies) < LISTEN_LIMIT, latencies
    assert listeners == 2  # one direct (LISTEN) connection per instance, nothing else there
    assert int(stats["total_xact_count"]) > 0  # the requests went through the pooler
    logs = a.logs() + b.logs() + pgbouncer.logs()
    assert "prepared statement" not in logs
    assert "LISTEN connection" not in logs  # never lost nor refused


# 4. Resuming.


async def test_last_event_id_resumes_exactly_after_it(
    database_url: str, scratch: ScratchFactory, api: ApiFactory, tokens: TokenFactory
) -> None:
    url = await scratch(database_url)
    server = api(url, events_poll_seconds=FAST_POLL, events_heartbeat_seconds=1)
    headers = tokens.headers("resume-user")
    async with writer(server) as client:
        await create(client, headers, title="before the stream")

        async with open_stream(server.base_url, headers) as first:
            await started(first)
            # Without Last-Event-ID the stream starts at the head: nothing is replayed.
            idle = await first.until(lambda record: record.is_heartbeat, within=5)
            assert not any(record.is_event for record in idle), idle
            one = await create(client, headers, title="one")
            two = await create(client, headers, title="two")
            seen = await first.events(2, within=5)
        assert [record.json()["todo"]["id"] for record in seen] == [one["id"], two["id"]]
        last = seen[-1].id
        assert last is not None

        # Missed while disconnected:
        one_again = await update(client, headers, one["id"], title="one, renamed")
        three = await create(client, headers, title="three")
        await delete(client, headers, two["id"])
        missed = [
            {"op": "upsert", "todo": one_again},
            {"op": "upsert", "todo": three},
            {"op": "delete", "id": two["id"]},
        ]

        async with open_stream(server.base_url, headers, last_event_id=last) as resumed:
            await started(resumed)
            replayed = await resumed.events(3, within=5)
            # Then nothing more: a heartbeat, no further event.
            after = await resumed.until(lambda record: record.is_heartbeat, within=5)
        assert [record.json() for record in replayed] == missed
        assert not any(record.is_event for record in after), after
        assert {record.event for record in replayed} == {"todo"}
        ordered = positions("resume-user", [*seen, *replayed])
        assert ordered == sorted(ordered)
        assert len(set(ordered)) == 5
        assert (await feed(client, headers, last))["changes"] == missed

        # From the last id replayed: nothing to replay.
        async with open_stream(
            server.base_url, headers, last_event_id=replayed[-1].id
        ) as caught_up:
            await started(caught_up)
            idle = await caught_up.until(lambda record: record.is_heartbeat, within=5)
        assert not any(record.is_event for record in idle), idle

        # One change of several todos (clearing the completed ones takes one change number):
        # resuming after the first of its events replays exactly the others.
        done = [await create(client, headers, title=f"done {n}", completed=True) for n in range(3)]
        async with open_stream(server.base_url, headers, last_event_id=replayed[-1].id) as clearing:
            await started(clearing)
            assert [record.json() for record in await clearing.events(3, within=5)] == [
                {"op": "upsert", "todo": todo} for todo in done
            ]
            cleared = await client.delete("/todos", params={"completed": "true"}, headers=headers)
            assert cleared.json() == {"deleted": 3}
            deletions = await clearing.events(3, within=5)
        assert sorted(record.json()["id"] for record in deletions) == sorted(
            todo["id"] for todo in done
        )
        assert len({position.seq for position in positions("resume-user", deletions)}) == 1
        async with open_stream(server.base_url, headers, last_event_id=deletions[0].id) as midway:
            await started(midway)
            rest = await midway.events(2, within=5)
            idle = await midway.until(lambda record: record.is_heartbeat, within=5)
        assert [(record.id, record.data) for record in rest] == [
            (record.id, record.data) for record in deletions[1:]
        ]
        assert not any(record.is_event for record in idle), idle

        garbage = await refused(server.base_url, headers, last_event_id="not-a-sync-token")
        assert_problem(garbage, 422, "unprocessable-content")

        other = tokens.headers("someone-else")
        await create(client, other, title="theirs")
        theirs = await client.get("/todos/changes", headers=other)
        assert theirs.status_code == 200, theirs.text
        their_token = theirs.json()["next"]  # a valid token, of theirs
        assert (await feed(client, other, their_token))["changes"] == []
        foreign = await refused(server.base_url, headers, last_event_id=their_token)
        assert_problem(foreign, 410, "resync-required")


# 5. Heartbeats.


async def test_an_idle_stream_gets_heartbeats_after_a_retry_hint(
    database_url: str, scratch: ScratchFactory, api: ApiFactory, tokens: TokenFactory
) -> None:
    url = await scratch(database_url)
    server = api(url, events_heartbeat_seconds=1)
    async with open_stream(server.base_url, tokens.headers("idle-user")) as stream:
        hint = await started(stream)
        records = await stream.collect(3.6)
    assert stream.response.headers["content-type"].startswith("text/event-stream")
    assert "no-store" in stream.response.headers["cache-control"]
    assert stream.first_bytes.startswith(b"retry: "), stream.first_bytes
    assert hint.retry is not None
    assert 1_000 <= hint.retry <= 4_000
    assert all(record.is_heartbeat for record in records), records
    assert all(record.raw == b": heartbeat" for record in records)
    assert 2 <= len(records) <= 4, records
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(records)]
    assert all(0.5 <= gap <= 2.5 for gap in gaps), gaps


# 6. Reminders.


async def reminders_in_database(url: str, todo_id: str) -> list[datetime]:
    async with connected(url, connect_timeout=CONNECT_TIMEOUT) as connection:
        rows = await connection.fetch(
            "SELECT remind_at FROM reminder WHERE todo_id = $1 ORDER BY remind_at", todo_id
        )
    return [row["remind_at"] for row in rows]


async def fires_once(streams: list[EventStream], todo: Any, settle: float) -> list[float]:
    """Each stream gets the update that set `todo`'s reminder, then one reminder for it when
    it is due and nothing else for `settle` s after: the reminders' delays after the moment."""
    moment = parse_moment(todo["remind_at"])
    due = time.monotonic() + (moment - datetime.now(UTC)).total_seconds()
    delays = []
    for stream in streams:
        [upsert] = await stream.events(1, within=5)
        assert upsert.json() == {"op": "upsert", "todo": todo}
    for stream in streams:
        [fired] = await stream.events(1, within=due - time.monotonic() + 5)
        assert fired.event == "reminder", fired
        data = fired.json()
        assert data["op"] == "reminder"
        assert data["todo"]["id"] == todo["id"]
        assert parse_moment(data["remind_at"]) == moment
        assert parse_moment(data["todo"]["remind_at"]) == moment
        delays.append(fired.at - due)
    later = await asyncio.gather(*(stream.collect(settle) for stream in streams))
    for records in later:
        assert not any(record.is_event for record in records), records
    return delays


async def test_a_reminder_fires_once_across_instances(
    database_url: str, scratch: ScratchFactory, api: ApiFactory, tokens: TokenFactory
) -> None:
    """The same user has a stream on A and one on B, and both instances poll every 0.2 s for
    due reminders: each stream gets one `reminder` event per reminder, the database holds
    one fired reminder, a completed todo's reminder never fires, and a new remind_at fires
    again, once."""
    url = await scratch(database_url)
    a = api(url, name="a", events_poll_seconds=FAST_POLL)
    b = api(url, name="b", events_poll_seconds=FAST_POLL)
    headers = tokens.headers("reminded-user")
    settle = 8 * FAST_POLL  # poll rounds in which a duplicate would show up
    async with (
        writer(a) as client,
        open_stream(a.base_url, headers) as on_a,
        open_stream(b.base_url, headers) as on_b,
    ):
        streams = [on_a, on_b]
        for stream in streams:
            await started(stream)
        now = datetime.now(UTC)
        due_at = iso(now + timedelta(hours=1))
        done = await create(
            client,
            headers,
            title="completed: no reminder",
            completed=True,
            remind_at=iso(now + timedelta(seconds=1)),
            due_at=due_at,
        )
        for stream in streams:
            [upsert] = await stream.events(1, within=5)
            assert upsert.json() == {"op": "upsert", "todo": done}

        todo = await create(
            client, headers, title="remind me", remind_at=iso(now + timedelta(seconds=2)),
            due_at=due_at,
        )  # fmt: skip
        first = await fires_once(streams, todo, settle)
        assert await reminders_in_database(url, todo["id"]) == [parse_moment(todo["remind_at"])]
        assert await reminders_in_database(url, done["id"]) == []

        moved = await update(
            client, headers, todo["id"], remind_at=iso(datetime.now(UTC) + timedelta(seconds=2))
        )
        second = await fires_once(streams, moved, settle)
        fired = await reminders_in_database(url, todo["id"])
        assert fired == sorted({parse_moment(todo["remind_at"]), parse_moment(moved["remind_at"])})
    print_figure(
        "reminders, two instances polling every 0.2 s: events "
        + ", ".join(f"{delay * 1000:.0f} ms" for delay in [*first, *second])
        + " after the moment, one each per stream, one row each in `reminder`"
    )
    for delay in [*first, *second]:
        assert -0.1 <= delay <= 3.0  # never early; late by a few polls at most


# 7. The per-user limit.


async def test_the_stream_limit_per_user(
    database_url: str, scratch: ScratchFactory, api: ApiFactory, tokens: TokenFactory
) -> None:
    url = await scratch(database_url)
    server = api(url, events_max_streams_per_user=2)
    headers = tokens.headers("busy-user")
    async with AsyncExitStack() as streams:
        first = AsyncExitStack()
        streams.push_async_callback(first.aclose)  # closed below; here too if the test fails
        await started(await first.enter_async_context(open_stream(server.base_url, headers)))
        await started(await streams.enter_async_context(open_stream(server.base_url, headers)))

        third = await refused(server.base_url, headers)
        assert_problem(third, 429, "too-many-streams")
        assert int(third.headers["retry-after"]) >= 1

        # Another user is not affected.
        other = await streams.enter_async_context(
            open_stream(server.base_url, tokens.headers("calm-user"))
        )
        await started(other)

        # Closing a stream (the client goes away) frees its slot at once.
        await first.aclose()
        closed = time.monotonic()
        replacement = None
        statuses = []
        while time.monotonic() - closed < 2.0:
            attempt = AsyncExitStack()
            stream = await attempt.enter_async_context(open_stream(server.base_url, headers))
            statuses.append(stream.status_code)
            if stream.status_code == 200:
                replacement = stream
                await streams.enter_async_context(attempt)
                break
            await attempt.aclose()
            await asyncio.sleep(0.05)
        freed = time.monotonic() - closed
        assert replacement is not None, f"no slot within 2 s of a close: {statuses}"
        await started(replacement)
        # Two open again: the limit still holds.
        assert_problem(await refused(server.base_url, headers), 429, "too-many-streams")
    print_figure(
        f"events: a closed stream's slot was free again after {freed * 1000:.0f} ms "
        f"({len(statuses)} attempts)"
    )


# 8. Shutdown.


async def test_sigterm_ends_streams_at_once_and_the_process_exits_after_the_drain(
    database_url: str, scratch: ScratchFactory, api: ApiFactory, tokens: TokenFactory
) -> None:
    drain = 3.0
    server = api(await scratch(database_url), shutdown_drain_seconds=drain)
    assert server.process is not None
    headers = tokens.headers("leaving-user")
    async with open_stream(server.base_url, headers) as stream:
        await started(stream)
        signalled = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        await stream.end(within=drain + 5)
        assert stream.error is None, stream.error
        assert stream.ended_at is not None
        ended = stream.ended_at - signalled

        during = await refused(server.base_url, headers)  # still draining: new streams 503
        asked = time.monotonic() - signalled
    code = await asyncio.to_thread(server.process.wait, drain + 15)
    exited = time.monotonic() - signalled

    print_figure(
        f"SIGTERM with a {drain:g} s drain: the open stream ended after {ended * 1000:.0f} ms, "
        f"a new /events {asked:.2f} s in answered {during.status_code}, "
        f"exit after {exited:.2f} s (code {code})"
    )
    assert ended < 1.0
    assert stream.records[-1].is_retry, stream.records
    assert not any(record.is_event for record in stream.records)
    assert asked < drain
    assert_problem(during, 503, "service-unavailable")
    assert "retry-after" in during.headers
    assert code in {0, -signal.SIGTERM}, server.logs()[-3000:]
    # After the drain, not held by the stream until uvicorn's 10 s timeout.
    assert drain - 0.2 <= exited <= drain + 2.0


# 9. Token expiry.


async def test_a_stream_ends_when_its_token_expires(
    database_url: str, scratch: ScratchFactory, api: ApiFactory, tokens: TokenFactory
) -> None:
    server = api(await scratch(database_url))  # heartbeats every 15 s: none in this test
    expires = int(time.time()) + 3
    token = tokens("short-lived-user", exp=expires)
    async with open_stream(server.base_url, bearer(token)) as stream:
        await started(stream)
        clock = time.time() - time.monotonic()  # monotonic -> wall clock
        await stream.end(within=expires - time.time() + 5)
        assert stream.error is None, stream.error
        assert stream.ended_at is not None
        ended = stream.ended_at + clock - expires
    print_figure(f"events: a stream ended {ended * 1000:.0f} ms after its token's exp")
    assert -0.1 <= ended <= 1.5
    assert stream.records[-1].is_retry, stream.records
    assert not any(record.is_event for record in stream.records)


# 10. Isolation.


async def test_a_stream_carries_its_own_users_changes_only(
    database_url: str, scratch: ScratchFactory, api: ApiFactory, tokens: TokenFactory
) -> None:
    """User A writes a lot through both instances while B has a stream on each: B's streams
    get nothing but heartbeats, while A's own stream (the control) sees every write."""
    url = await scratch(database_url)
    settings = {
        "database_direct_url": url,
        "events_poll_seconds": FAST_POLL,
        "events_heartbeat_seconds": 1,
    }
    one = api(url, name="one", **settings)
    two = api(url, name="two", **settings)
    writer_headers = tokens.headers("writer-a")
    reader_headers = tokens.headers("reader-b")
    async with (
        writer(one) as client_one,
        writer(two) as client_two,
        open_stream(one.base_url, reader_headers) as b_on_one,
        open_stream(two.base_url, reader_headers) as b_on_two,
        open_stream(two.base_url, writer_headers) as control,
    ):
        for stream in (b_on_one, b_on_two, control):
            await started(stream)

        async def churn(client: httpx.AsyncClient, n: int) -> None:
            todo = await create(client, writer_headers, title=f"a's todo {n}")
            todo = await update(client, writer_headers, todo["id"], completed=True)
            if n % 2:
                await delete(client, writer_headers, todo["id"])

        clients = [client_one, client_two]
        await asyncio.gather(*(churn(clients[n % 2], n) for n in range(30)))
        last = await create(client_one, writer_headers, title="the last one")
        # The control saw the writes, up to the last one.
        with contextlib.suppress(StreamEnded):
            await control.until(
                lambda record: record.is_event and record.json().get("todo") == last, within=5
            )
        settled = await asyncio.gather(b_on_one.collect(1.5), b_on_two.collect(1.5))

    control_events = [record for record in control.records if record.is_event]
    assert control_events
    assert control_events[-1].json() == {"op": "upsert", "todo": last}
    assert len(control_events) >= 30
    for stream in (b_on_one, b_on_two):
        assert not any(record.is_event for record in stream.records), stream.records
        heartbeats = [record for record in stream.records if record.is_heartbeat]
        assert heartbeats, stream.records
        assert all(record.is_heartbeat or record.is_retry for record in stream.records)
    assert all(records for records in settled)
