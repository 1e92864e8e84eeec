"""GET /todos/changes: every kind of write shows up after the token, exactly once, as the todo
is now; failed writes add nothing; paging with `next` sees everything once; tokens are one
user's own, and malformed ones and bad limits are refused.

All requests run in the test's rolled-back transaction (`client`); the races of committed
writers are in test_ordering.py.
"""

import base64
import struct
import uuid
from typing import Any

import httpx
import pytest

from backend.sync import tokens as sync_tokens
from backend.sync.records import Position
from tests.sync.support import Change, Feed, catch_up, changes_page, summary
from tests.tags.support import assert_problem, create_tag
from tests.todos.support import Headers, Todo, create_todo


async def get(client: httpx.AsyncClient, headers: Headers, todo_id: str) -> Todo:
    response = await client.get(f"/todos/{todo_id}", headers=headers)
    assert response.status_code == 200, response.text
    todo: Todo = response.json()
    return todo


async def patch(
    client: httpx.AsyncClient, headers: Headers, todo_id: str, **changes: Any
) -> httpx.Response:
    return await client.patch(f"/todos/{todo_id}", json=changes, headers=headers)


def upsert(todo: Todo) -> Change:
    return {"op": "upsert", "todo": todo}


def deleted(todo_id: str) -> Change:
    return {"op": "delete", "id": todo_id}


def assert_resync(response: httpx.Response) -> None:
    problem = assert_problem(response, 410)
    assert problem["type"].endswith("#resync-required"), problem


# -- every kind of write ----------------------------------------------------------------------


async def test_a_new_users_feed_is_empty_and_its_token_yields_nothing(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    """Before any write: no changes, no `more`, and a token that works (and stays empty)."""
    first = await changes_page(client, alice)
    assert first["changes"] == []
    assert first["more"] is False
    again = await changes_page(client, alice, since=first["next"])
    assert again == {"changes": [], "next": first["next"], "more": False}


async def test_creates_appear_as_created_with_tags_and_with_an_idempotency_key(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    """Each create, with or without tags or an Idempotency-Key, is one upsert equal to the
    201 body; a replayed Idempotency-Key writes nothing and so adds nothing."""
    feed = Feed(client, alice)
    assert await feed.new() == []

    plain = await create_todo(client, alice, title="plain")
    assert await feed.new() == [upsert(plain)]

    tagged = await create_todo(client, alice, title="tagged", tags=["Work", "home"])
    assert tagged["tags"] == ["home", "Work"]
    assert await feed.new() == [upsert(tagged)]

    keyed_headers = {**alice, "Idempotency-Key": "create-once"}
    first = await client.post("/todos", json={"title": "keyed"}, headers=keyed_headers)
    assert first.status_code == 201, first.text
    assert await feed.new() == [upsert(first.json())]
    replay = await client.post("/todos", json={"title": "keyed"}, headers=keyed_headers)
    assert replay.status_code == 201
    assert replay.json() == first.json()
    assert await feed.new() == []


async def test_updates_appear_as_the_todo_now_is_and_failed_ones_add_nothing(
    client: httpx.AsyncClient, alice: Headers, bob: Headers
) -> None:
    """PATCH and If-Match PATCH are each one upsert equal to the 200 body; a 412 (stale
    If-Match), a 404 (unknown id, or another user's todo) and an empty PATCH add nothing."""
    todo = await create_todo(client, alice, title="v1")
    feed = Feed(client, alice)
    await feed.new()

    patched = await patch(client, alice, todo["id"], title="v2")
    assert patched.status_code == 200
    assert await feed.new() == [upsert(patched.json())]

    guarded = await client.patch(
        f"/todos/{todo['id']}", json={"priority": "high"}, headers={**alice, "If-Match": '"2"'}
    )
    assert guarded.status_code == 200, guarded.text
    assert guarded.json()["version"] == 3
    assert await feed.new() == [upsert(guarded.json())]

    stale = await client.patch(
        f"/todos/{todo['id']}", json={"title": "lost"}, headers={**alice, "If-Match": '"2"'}
    )
    assert_problem(stale, 412)
    assert_problem(await patch(client, alice, str(uuid.uuid4()), title="nobody"), 404)
    bobs = await create_todo(client, bob, title="bob's")
    assert_problem(await patch(client, alice, bobs["id"], title="stolen"), 404)
    assert (await patch(client, alice, todo["id"])).status_code == 200  # nothing to write
    assert await feed.new() == []
    assert (await get(client, alice, todo["id"]))["version"] == 3


async def test_a_delete_leaves_exactly_a_tombstone_and_failed_deletes_add_nothing(
    client: httpx.AsyncClient, alice: Headers, bob: Headers
) -> None:
    """DELETE is one {"op": "delete", "id"}; a stale If-Match (412), a repeated delete and
    a delete of another user's todo (404) add nothing to either user's feed."""
    todo = await create_todo(client, alice, title="doomed")
    bobs = await create_todo(client, bob, title="bob's")
    feed, bob_feed = Feed(client, alice), Feed(client, bob)
    await feed.new()
    await bob_feed.new()

    stale = await client.delete(f"/todos/{todo['id']}", headers={**alice, "If-Match": '"7"'})
    assert_problem(stale, 412)
    assert_problem(await client.delete(f"/todos/{bobs['id']}", headers=alice), 404)
    assert await feed.new() == []

    gone = await client.delete(f"/todos/{todo['id']}", headers={**alice, "If-Match": '"1"'})
    assert gone.status_code == 204
    assert await feed.new() == [deleted(todo["id"])]

    assert_problem(await client.delete(f"/todos/{todo['id']}", headers=alice), 404)
    assert await feed.new() == []
    assert await bob_feed.new() == []


async def test_clearing_completed_todos_leaves_a_tombstone_for_each_and_only_those(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    """DELETE /todos?completed=true: one tombstone per cleared todo (in id order, as they
    share one change number), none for the open todo; clearing again adds nothing."""
    done = [await create_todo(client, alice, title=f"done {n}", completed=True) for n in range(4)]
    still_open = await create_todo(client, alice, title="open")
    feed = Feed(client, alice)
    await feed.new()

    response = await client.delete("/todos", params={"completed": "true"}, headers=alice)
    assert response.status_code == 200, response.text

    expected = sorted((todo["id"] for todo in done), key=uuid.UUID)
    assert await feed.new() == [deleted(todo_id) for todo_id in expected]
    assert (await get(client, alice, still_open["id"]))["version"] == 1
    again = await client.delete("/todos", params={"completed": "true"}, headers=alice)
    assert again.status_code == 200
    assert await feed.new() == []


async def test_renaming_or_deleting_a_tag_brings_back_each_todo_carrying_it(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    """A tag rename and a tag delete each reappear as upserts of exactly the todos carrying
    the tag, with their new tags and versions (equal to GET); other todos stay out."""
    tag = await create_tag(client, alice, "errand")
    first = await create_todo(client, alice, title="first", tags=["errand", "home"])
    second = await create_todo(client, alice, title="second", tags=["errand"])
    await create_todo(client, alice, title="untagged")
    await create_todo(client, alice, title="other tag", tags=["home"])
    feed = Feed(client, alice)
    await feed.new()

    renamed = await client.patch(f"/tags/{tag['id']}", json={"name": "chore"}, headers=alice)
    assert renamed.status_code == 200, renamed.text
    changes = await feed.new()
    assert sorted(summary(changes)) == sorted([("upsert", first["id"]), ("upsert", second["id"])])
    for change in changes:
        assert change["todo"] == await get(client, alice, change["todo"]["id"])
    assert {c["todo"]["id"]: c["todo"]["tags"] for c in changes} == {
        first["id"]: ["chore", "home"],
        second["id"]: ["chore"],
    }
    assert all(change["todo"]["version"] == 2 for change in changes)

    removed = await client.delete(f"/tags/{tag['id']}", headers=alice)
    assert removed.status_code == 204
    changes = await feed.new()
    assert sorted(summary(changes)) == sorted([("upsert", first["id"]), ("upsert", second["id"])])
    assert {c["todo"]["id"]: c["todo"]["tags"] for c in changes} == {
        first["id"]: ["home"],
        second["id"]: [],
    }
    assert all(change["todo"]["version"] == 3 for change in changes)


@pytest.mark.parametrize("changes", [{}, {"tags": ["garden"]}], ids=["plain", "with tags"])
async def test_completing_a_recurring_todo_brings_the_completed_todo_and_its_successor(
    client: httpx.AsyncClient, alice: Headers, changes: dict[str, Any]
) -> None:
    """The completion of a recurring todo (alone, or with new tags) is two upserts: the
    completed todo (with next_id) and its spawned successor, each once and as GET shows it."""
    todo = await create_todo(
        client, alice, title="water plants", recurrence="FREQ=DAILY", due_at="2030-01-10T08:00:00Z"
    )
    feed = Feed(client, alice)
    await feed.new()

    response = await patch(client, alice, todo["id"], completed=True, **changes)
    assert response.status_code == 200, response.text
    completed = response.json()
    successor_id = completed["next_id"]
    assert successor_id is not None

    seen = await feed.new()
    assert sorted(summary(seen)) == sorted([("upsert", todo["id"]), ("upsert", successor_id)])
    by_id = {change["todo"]["id"]: change["todo"] for change in seen}
    assert by_id[todo["id"]] == completed == await get(client, alice, todo["id"])
    assert by_id[successor_id] == await get(client, alice, successor_id)
    assert by_id[successor_id]["previous_id"] == todo["id"]
    assert by_id[successor_id]["tags"] == changes.get("tags", [])

    # Completing it again spawns nothing: at most the completed todo itself comes back.
    again = await patch(client, alice, todo["id"], completed=True)
    assert again.status_code == 200
    assert summary(await feed.new()) in ([], [("upsert", todo["id"])])


async def test_from_the_beginning_each_todo_appears_once_as_it_is_now_in_write_order(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    """`since` omitted: every live todo once, as GET shows it, and a tombstone for each
    deleted one, ordered by each todo's last write."""
    a = await create_todo(client, alice, title="a")
    b = await create_todo(client, alice, title="b", tags=["x"])
    c = await create_todo(client, alice, title="c")
    assert (await patch(client, alice, a["id"], title="a2")).status_code == 200
    assert (await client.delete(f"/todos/{b['id']}", headers=alice)).status_code == 204
    assert (await patch(client, alice, c["id"], completed=True)).status_code == 200
    assert (await patch(client, alice, a["id"], title="a3")).status_code == 200

    changes, _ = await catch_up(client, alice)

    assert summary(changes) == [("delete", b["id"]), ("upsert", c["id"]), ("upsert", a["id"])]
    assert changes[1]["todo"] == await get(client, alice, c["id"])
    assert changes[2]["todo"] == await get(client, alice, a["id"])
    assert changes[2]["todo"]["title"] == "a3"


# -- paging -----------------------------------------------------------------------------------


async def write_a_history(client: httpx.AsyncClient, headers: Headers) -> None:
    """Creates, updates, a delete and a clear of five todos in one write (one change
    number shared by five entries)."""
    todos = [await create_todo(client, headers, title=f"todo {n}") for n in range(9)]
    for todo in todos[:5]:
        assert (await patch(client, headers, todo["id"], completed=True)).status_code == 200
    assert (await patch(client, headers, todos[6]["id"], title="updated")).status_code == 200
    assert (await client.delete(f"/todos/{todos[7]['id']}", headers=headers)).status_code == 204
    cleared = await client.delete("/todos", params={"completed": "true"}, headers=headers)
    assert cleared.status_code == 200, cleared.text
    assert cleared.json() == {"deleted": 5}
    await create_todo(client, headers, title="last")


@pytest.mark.parametrize("limit", [1, 2, 3, 4, 9, 10, 11])
async def test_following_next_with_small_pages_sees_everything_once(
    client: httpx.AsyncClient, alice: Headers, limit: int
) -> None:
    """Paging with `limit` yields exactly the one-page answer: no duplicates, no gaps (also
    inside the five tombstones of one write), full pages while `more`, and `more` false on
    the last page even when it is exactly full."""
    await write_a_history(client, alice)
    everything = (await changes_page(client, alice, limit=500))["changes"]
    assert len(everything) == 10  # 4 live todos, 1 deleted, 5 cleared
    assert len(set(summary(everything))) == 10

    paged: list[Change] = []
    since: str | None = None
    while True:
        page = await changes_page(client, alice, since=since, limit=limit)
        paged.extend(page["changes"])
        since = page["next"]
        if not page["more"]:
            break
        assert len(page["changes"]) == limit
        assert len(paged) < len(everything), "`more` after the last change"

    assert paged == everything
    assert (await changes_page(client, alice, since=since, limit=limit))["changes"] == []


async def test_a_token_is_accepted_later_and_yields_only_newer_changes(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    """A token from mid-feed (a page with `more`) and one from after catching up each,
    used after more writes, yield what followed them: a todo changed again moves to the
    end (once), nothing before the token comes back."""
    early = await create_todo(client, alice, title="early")
    middle = await create_todo(client, alice, title="middle")
    late = await create_todo(client, alice, title="late")
    first_page = await changes_page(client, alice, limit=1)
    assert summary(first_page["changes"]) == [("upsert", early["id"])]
    assert first_page["more"] is True
    _, caught_up = await catch_up(client, alice)

    updated = await patch(client, alice, early["id"], title="early, again")
    assert (await client.delete(f"/todos/{middle['id']}", headers=alice)).status_code == 204
    newest = await create_todo(client, alice, title="newest")

    after_catching_up, _ = await catch_up(client, alice, since=caught_up)
    assert after_catching_up == [upsert(updated.json()), deleted(middle["id"]), upsert(newest)]

    after_first_page, _ = await catch_up(client, alice, since=first_page["next"], limit=2)
    assert summary(after_first_page) == [
        ("upsert", late["id"]),
        ("upsert", early["id"]),
        ("delete", middle["id"]),
        ("upsert", newest["id"]),
    ]


async def test_a_token_from_the_future_is_refused_with_410(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    """A well-formed token of this user past the head (another database, a restored backup)
    cannot be answered exactly: 410, resync."""
    await create_todo(client, alice)
    _, token = await catch_up(client, alice)
    ahead = sync_tokens.encode("alice", Position(10_000, uuid.UUID(int=0)))
    assert_resync(await client.get("/todos/changes", params={"since": ahead}, headers=alice))
    assert (await client.get("/todos/changes", params={"since": token}, headers=alice)).is_success


# -- isolation --------------------------------------------------------------------------------


async def test_another_users_writes_never_show_in_a_feed_nor_change_it(
    client: httpx.AsyncClient, alice: Headers, bob: Headers
) -> None:
    """Bob's answers are byte for byte the same whether or not Alice wrote in between
    (same changes, same `next`: no count of hers leaks), and none of her ids is in them."""
    bobs = await create_todo(client, bob, title="bob's")
    before = [await changes_page(client, bob), await changes_page(client, bob, limit=1)]
    token = before[0]["next"]
    before.append(await changes_page(client, bob, since=token))

    alices = [await create_todo(client, alice, title=f"alice {n}", tags=["t"]) for n in range(3)]
    assert (await patch(client, alice, alices[0]["id"], completed=True)).status_code == 200
    assert (await client.delete("/todos?completed=true", headers=alice)).status_code == 200
    assert (await client.delete(f"/todos/{alices[1]['id']}", headers=alice)).status_code == 204

    after = [
        await changes_page(client, bob),
        await changes_page(client, bob, limit=1),
        await changes_page(client, bob, since=token),
    ]
    assert after == before
    assert summary(after[0]["changes"]) == [("upsert", bobs["id"])]
    alice_changes, _ = await catch_up(client, alice)
    assert bobs["id"] not in str(alice_changes)


async def test_a_token_of_another_user_is_refused_with_410(
    client: httpx.AsyncClient, alice: Headers, bob: Headers
) -> None:
    """Alice's tokens (from the start, mid-feed, caught up) passed by Bob: 410 problem
    resync-required, naming nothing of Alice's; his own token still works."""
    todos = [await create_todo(client, alice, title=f"t{n}") for n in range(2)]
    await create_todo(client, bob)
    empty_token = (await changes_page(client, bob))["next"]
    mid = (await changes_page(client, alice, limit=1))["next"]
    _, caught_up = await catch_up(client, alice)

    for token in (mid, caught_up):
        response = await client.get("/todos/changes", params={"since": token}, headers=bob)
        assert_resync(response)
        assert not any(todo["id"] in response.text for todo in todos)
    stranger = await client.get("/todos/changes", params={"since": empty_token}, headers=alice)
    assert_resync(stranger)
    assert (await changes_page(client, bob, since=empty_token))["changes"] == []


async def test_the_feed_requires_authentication(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/todos/changes"), 401)


# -- hostile input ----------------------------------------------------------------------------


def _raw_token(version: int, seq: int = 1, user_hash: bytes = b"\0" * 4) -> str:
    raw = struct.pack(">B4sQ16s", version, user_hash, seq, uuid.uuid4().bytes)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _valid_with_version(version: int) -> str:
    """A token for "alice" in every way but its version byte."""
    good = base64.urlsafe_b64decode(sync_tokens.encode("alice", Position(1, uuid.uuid4())) + "=")
    return base64.urlsafe_b64encode(bytes([version]) + good[1:]).rstrip(b"=").decode()


MALFORMED_TOKENS = {
    "garbage": "not-a-token",
    "empty": "",
    "one char short": sync_tokens.encode("alice", Position(1, uuid.uuid4()))[:-1],
    "one char long": sync_tokens.encode("alice", Position(1, uuid.uuid4())) + "A",
    "padded": sync_tokens.encode("alice", Position(1, uuid.uuid4())) + "=",
    "not base64": "!" * 39,
    "spaces": " " * 39,
    "non-ascii": "é" * 39,
    "version 0": _valid_with_version(0),
    "version 2": _valid_with_version(2),
    "version 255": _valid_with_version(255),
    "sequence past int64": _raw_token(1, seq=1 << 63),
    "huge": "A" * 60_000,
    "huge valid prefix": sync_tokens.encode("alice", Position(1, uuid.uuid4())) * 3,
    "sql": "1' OR '1'='1' --" + "A" * 23,
    "nul": "\x00" * 39,
}


@pytest.mark.parametrize("token", MALFORMED_TOKENS.values(), ids=MALFORMED_TOKENS.keys())
async def test_a_malformed_token_is_refused_with_422(
    client: httpx.AsyncClient, alice: Headers, token: str
) -> None:
    """Anything that is not a token as issued is a 422 problem — never a 500, never
    silently "from the beginning"."""
    await create_todo(client, alice)
    response = await client.get("/todos/changes", params={"since": token}, headers=alice)
    assert_problem(response, 422)


async def test_a_token_with_a_valid_version_and_anyone_elses_hash_is_410_not_422(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    """Well-formed but for another user (here: a made-up hash): 410, the feed's own answer."""
    token = _raw_token(1, seq=0, user_hash=b"\xde\xad\xbe\xef")
    assert_resync(await client.get("/todos/changes", params={"since": token}, headers=alice))


@pytest.mark.parametrize("limit", ["0", "-1", "501", "100000000000000000000", "abc", "1.5", ""])
async def test_a_limit_out_of_bounds_is_refused_with_422(
    client: httpx.AsyncClient, alice: Headers, limit: str
) -> None:
    response = await client.get("/todos/changes", params={"limit": limit}, headers=alice)
    assert_problem(response, 422)


@pytest.mark.parametrize("limit", [1, 500])
async def test_the_limit_bounds_themselves_are_accepted(
    client: httpx.AsyncClient, alice: Headers, limit: int
) -> None:
    await create_todo(client, alice)
    await create_todo(client, alice)
    page = await changes_page(client, alice, limit=limit)
    assert len(page["changes"]) == min(limit, 2)
    assert page["more"] is (limit == 1)
