"""Races between real, committed requests on the production engine (see `committed_client`).

httpx's ASGITransport runs each request as its own task on the event loop, and each one gets
its own pooled connection, so the requests truly overlap inside PostgreSQL; `probe` proves it.
"""

import asyncio
from collections import Counter
from collections.abc import Callable

import httpx

from tests.support import TokenFactory
from tests.todos.support import ConcurrencyProbe, create_todo, list_all

IDEMPOTENCY_ROUNDS = 20


async def test_concurrent_patches_with_one_etag_let_exactly_one_win(
    committed_client: httpx.AsyncClient,
    committed_user: Callable[[], str],
    tokens: TokenFactory,
    probe: ConcurrencyProbe,
) -> None:
    headers = tokens.headers(committed_user())
    todo = await create_todo(committed_client, headers, title="contended")
    etag = '"1"'

    responses = await asyncio.gather(
        *(
            committed_client.patch(
                f"/todos/{todo['id']}",
                json={"title": f"writer {n}"},
                headers={**headers, "If-Match": etag},
            )
            for n in range(10)
        )
    )

    assert probe.max_in_flight > 1, "the requests did not overlap"
    statuses = Counter(response.status_code for response in responses)
    assert statuses == {200: 1, 412: 9}
    winner = next(response.json() for response in responses if response.status_code == 200)
    stored = (await committed_client.get(f"/todos/{todo['id']}", headers=headers)).json()
    assert stored == winner
    assert stored["version"] == 2


async def test_concurrent_retries_of_one_idempotency_key_create_one_todo(
    committed_client: httpx.AsyncClient,
    committed_user: Callable[[], str],
    tokens: TokenFactory,
    probe: ConcurrencyProbe,
) -> None:
    headers = tokens.headers(committed_user())
    # A known user: the first request provisions the row (and locks it until commit).
    assert (await committed_client.get("/todos", headers=headers)).status_code == 200
    in_flight_seen = False

    for round_number in range(IDEMPOTENCY_ROUNDS):
        key = f"round-{round_number}"
        responses = await asyncio.gather(
            *(
                committed_client.post(
                    "/todos",
                    json={"title": key},
                    headers={**headers, "Idempotency-Key": key},
                )
                for _ in range(8)
            )
        )

        statuses = Counter(response.status_code for response in responses)
        assert set(statuses) <= {201, 409}, statuses
        created = [r for r in responses if r.status_code == 201]
        originals = [r for r in created if "idempotent-replayed" not in r.headers]
        assert len(originals) == 1, statuses
        assert all(r.json() == originals[0].json() for r in created)
        titles = [todo["title"] for todo in await list_all(committed_client, headers, limit=100)]
        assert titles.count(key) == 1
        for conflict in (r for r in responses if r.status_code == 409):
            assert conflict.headers["content-type"] == "application/problem+json"
            assert conflict.json()["status"] == 409
            in_flight_seen = True
        if in_flight_seen:
            break

    assert probe.max_in_flight > 1, "the requests did not overlap"
    assert in_flight_seen, f"no retry ever found its key in flight in {IDEMPOTENCY_ROUNDS} rounds"
