"""Races between real, committed requests creating tags (see tests/todos/test_concurrency.py
and `committed_client`): a name is created once whatever the case and the timing, and a loser
is told 409 (POST /tags) or simply uses the winner's tag (POST /todos), never a 500."""

import asyncio
from collections import Counter
from collections.abc import Callable

import httpx

from backend.tags.models import MAX_TAGS_PER_USER
from tests.support import TokenFactory, connected
from tests.tags.support import list_tags
from tests.todos.support import ConcurrencyProbe, Headers, list_all

RACERS = 20


async def known_user(client: httpx.AsyncClient, tokens: TokenFactory, user_id: str) -> Headers:
    """Headers for a user the app has provisioned already (the first request of a user
    provisions its row and would serialize the racers)."""
    headers = tokens.headers(user_id)
    assert (await client.get("/tags", headers=headers)).status_code == 200
    return headers


async def test_concurrent_creates_of_one_name_in_any_case_create_one_tag(
    committed_client: httpx.AsyncClient,
    committed_user: Callable[[], str],
    tokens: TokenFactory,
    probe: ConcurrencyProbe,
) -> None:
    headers = await known_user(committed_client, tokens, committed_user())

    responses = await asyncio.gather(
        *(
            committed_client.post(
                "/tags", json={"name": "Work" if n % 2 else "work"}, headers=headers
            )
            for n in range(RACERS)
        )
    )

    assert probe.max_in_flight > 1, "the requests did not overlap"
    statuses = Counter(response.status_code for response in responses)
    assert statuses == {201: 1, 409: RACERS - 1}, [r.text for r in responses]
    for conflict in (r for r in responses if r.status_code == 409):
        assert conflict.headers["content-type"] == "application/problem+json"
    winner = next(r.json() for r in responses if r.status_code == 201)
    assert await list_tags(committed_client, headers) == [winner]


async def test_concurrent_todos_naming_one_new_tag_in_any_case_share_one_tag(
    committed_client: httpx.AsyncClient,
    committed_user: Callable[[], str],
    tokens: TokenFactory,
    probe: ConcurrencyProbe,
) -> None:
    headers = await known_user(committed_client, tokens, committed_user())

    responses = await asyncio.gather(
        *(
            committed_client.post(
                "/todos",
                json={"title": f"racer {n}", "tags": ["Work" if n % 2 else "work", "Other"]},
                headers=headers,
            )
            for n in range(RACERS)
        )
    )

    assert probe.max_in_flight > 1, "the requests did not overlap"
    assert [r.status_code for r in responses] == [201] * RACERS, [r.text for r in responses]
    tags = await list_tags(committed_client, headers)
    assert sorted(tag["name"].lower() for tag in tags) == ["other", "work"]
    work = next(tag for tag in tags if tag["name"].lower() == "work")
    assert work["todo_count"] == RACERS
    # Every todo carries the one tag, spelled as whichever request created it spelled it.
    assert all(r.json()["tags"] == ["Other", work["name"]] for r in responses)
    todos = await list_all(committed_client, headers, tag="WORK", limit=100)
    assert sorted(todo["id"] for todo in todos) == sorted(r.json()["id"] for r in responses)
    assert all(todo["tags"] == ["Other", work["name"]] for todo in todos)


async def test_concurrent_retags_of_one_todo_leave_one_of_the_sets(
    committed_client: httpx.AsyncClient,
    committed_user: Callable[[], str],
    tokens: TokenFactory,
    probe: ConcurrencyProbe,
) -> None:
    headers = await known_user(committed_client, tokens, committed_user())
    created = await committed_client.post("/todos", json={"title": "contended"}, headers=headers)
    todo = created.json()
    sets = [[f"set {n}", "shared" if n % 2 else "SHARED"] for n in range(10)]

    responses = await asyncio.gather(
        *(
            committed_client.patch(f"/todos/{todo['id']}", json={"tags": tags}, headers=headers)
            for tags in sets
        )
    )

    assert probe.max_in_flight > 1, "the requests did not overlap"
    assert [r.status_code for r in responses] == [200] * len(sets), [r.text for r in responses]
    final = (await committed_client.get(f"/todos/{todo['id']}", headers=headers)).json()
    assert final["version"] == 1 + len(sets)
    assert final in [r.json() for r in responses]  # the last writer's whole set, nothing mixed
    tags = await list_tags(committed_client, headers)
    assert [tag["name"].lower() for tag in tags].count("shared") == 1


async def fill_committed(database_url: str, user_id: str, count: int) -> None:
    """`count` committed tags for `user_id` (deleted with the user by `committed_user`)."""
    async with connected(database_url) as connection:
        await connection.execute(
            """INSERT INTO tag (id, user_id, name)
               SELECT gen_random_uuid(), $1, 'filler ' || n FROM generate_series(1, $2) AS n""",
            user_id,
            count,
        )


async def test_concurrent_creates_never_take_a_user_past_the_tag_bound(
    committed_client: httpx.AsyncClient,
    committed_user: Callable[[], str],
    tokens: TokenFactory,
    probe: ConcurrencyProbe,
    migrated: str,
) -> None:
    user_id = committed_user()
    headers = await known_user(committed_client, tokens, user_id)
    room = 3
    await fill_committed(migrated, user_id, MAX_TAGS_PER_USER - room)

    responses = await asyncio.gather(
        *(
            committed_client.post("/tags", json={"name": f"racer {n}"}, headers=headers)
            for n in range(RACERS // 2)
        ),
        *(
            committed_client.post(
                "/todos", json={"title": "x", "tags": [f"todo racer {n}"]}, headers=headers
            )
            for n in range(RACERS // 2)
        ),
    )

    assert probe.max_in_flight > 1, "the requests did not overlap"
    statuses = Counter(response.status_code for response in responses)
    assert statuses == {201: room, 409: RACERS - room}, [r.text for r in responses]
    assert len(await list_tags(committed_client, headers)) == MAX_TAGS_PER_USER
