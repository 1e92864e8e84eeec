"""Helpers for the change-feed tests: read GET /todos/changes page by page, apply what it
says to a local copy (as a client would), and look at the change log's tables."""

from typing import Any
from uuid import UUID

import asyncpg
import httpx

from tests.todos.support import Headers, Todo

Change = dict[str, Any]
MAX_PAGES = 1_000


async def changes_page(
    client: httpx.AsyncClient, headers: Headers, since: str | None = None, limit: int | None = None
) -> dict[str, Any]:
    """One answer of GET /todos/changes (200 asserted)."""
    params: dict[str, Any] = {}
    if since is not None:
        params["since"] = since
    if limit is not None:
        params["limit"] = limit
    response = await client.get("/todos/changes", params=params, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    page: dict[str, Any] = response.json()
    assert set(page) == {"changes", "next", "more"}, page
    if limit is not None:
        assert len(page["changes"]) <= limit
    return page


async def catch_up(
    client: httpx.AsyncClient, headers: Headers, since: str | None = None, limit: int | None = None
) -> tuple[list[Change], str]:
    """Every change after `since`, following `next` while `more`, and the last `next`."""
    found: list[Change] = []
    for _ in range(MAX_PAGES):
        page = await changes_page(client, headers, since, limit)
        found.extend(page["changes"])
        since = page["next"]
        if not page["more"]:
            return found, since
        assert page["changes"], "`more` with an empty page: the feed does not advance"
    raise AssertionError("the feed never caught up")


def key(change: Change) -> str:
    """The id of the todo a change is about."""
    return str(change["id"] if change["op"] == "delete" else change["todo"]["id"])


def summary(changes: list[Change]) -> list[tuple[str, str]]:
    """Each change as (op, todo id), in order."""
    return [(change["op"], key(change)) for change in changes]


def apply(state: dict[str, Todo], changes: list[Change]) -> None:
    """What a client does with the changes: upserts replace, deletes remove."""
    for change in changes:
        if change["op"] == "upsert":
            state[change["todo"]["id"]] = change["todo"]
        else:
            assert change["op"] == "delete", change
            state.pop(str(change["id"]), None)


async def counter(connection: asyncpg.Connection, user_id: str) -> tuple[int, int]:
    """The user's change counter: (last_seq, pruned_through); (0, 0) before any write."""
    row = await connection.fetchrow(
        "SELECT last_seq, pruned_through FROM change_counter WHERE user_id = $1", user_id
    )
    return (0, 0) if row is None else (row["last_seq"], row["pruned_through"])


async def stamps(connection: asyncpg.Connection, user_id: str) -> dict[str, int]:
    """The change number of each of the user's todos, by id."""
    rows = await connection.fetch("SELECT id, change_seq FROM todo WHERE user_id = $1", user_id)
    return {str(row["id"]): row["change_seq"] for row in rows}


async def tombstones(connection: asyncpg.Connection, user_id: str) -> dict[str, int]:
    """The change number of each of the user's tombstones, by todo id."""
    rows = await connection.fetch(
        "SELECT todo_id, change_seq FROM todo_tombstone WHERE user_id = $1", user_id
    )
    return {str(row["todo_id"]): row["change_seq"] for row in rows}


def uuid_of(text: str) -> UUID:
    return UUID(text)


class Feed:
    """One client's view of one user's feed: a token, moved on by each `new()`."""

    def __init__(self, client: httpx.AsyncClient, headers: Headers) -> None:
        self.client = client
        self.headers = headers
        self.token: str | None = None

    async def new(self, limit: int | None = None) -> list[Change]:
        """The changes since the last call (all of them, the first time)."""
        found, self.token = await catch_up(self.client, self.headers, self.token, limit)
        return found
