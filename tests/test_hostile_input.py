"""Never a 5xx from input: arbitrary text at every surface that reaches a parser or the
database — cursors (garbage, and well-formed ones with a valid checksum, which anyone can
compute), `q`, date filters, headers, body fields and token claims.

Each property runs the app in the test's rolled-back transaction (tests/conftest.py), driven
from Hypothesis's thread through BlockingClient.
"""

import asyncio
import base64
import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote_from_bytes

import httpx
import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backend.todos.pagination import SORT_KEYS, _checksum
from tests.support import TEST_SECRET, TokenFactory
from tests.todos.support import BlockingClient, Headers, create_todo

EXAMPLES = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# Any Unicode, lone surrogates and NUL included.
any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=60)
# What JSON can carry.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | any_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(any_text, inner, max_size=3),
    max_leaves=6,
)
# What a header value can carry (HTTP headers are latin-1 bytes, no control characters).
header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=80)


def never_5xx(response: httpx.Response) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:500])
    if response.status_code >= 400:
        assert response.headers["content-type"] == "application/problem+json"


def query(**values: bytes) -> str:
    """A query string of raw bytes, percent-encoded: invalid UTF-8 travels too."""
    return "&".join(f"{name}={quote_from_bytes(value)}" for name, value in values.items())


def forged_cursor(payload: Any) -> str:
    data = json.dumps(payload).encode()
    token = _checksum(data).encode() + b"." + data
    return base64.urlsafe_b64encode(token).decode().rstrip("=")


@pytest.fixture
def alice(tokens: TokenFactory) -> Headers:
    return tokens.headers("hostile-alice")


async def run(client: httpx.AsyncClient, check: Callable[[BlockingClient], None]) -> None:
    await asyncio.to_thread(check, BlockingClient(client, asyncio.get_running_loop()))


async def test_cursors_sorts_and_filters(client: httpx.AsyncClient, alice: Headers) -> None:
    await create_todo(client, alice, title="one", due_at="2030-01-01T00:00:00Z")

    @EXAMPLES
    @given(
        raw=st.binary(max_size=80),
        sort=st.sampled_from(SORT_KEYS),
        payload=st.lists(json_values, max_size=4) | json_values,
    )
    def check(api: BlockingClient, raw: bytes, sort: str, payload: Any) -> None:
        for values in (
            {"cursor": raw},
            {"sort": sort.encode(), "cursor": forged_cursor(payload).encode()},
            {
                "sort": sort.encode(),
                "cursor": forged_cursor([sort, str(payload), raw.hex()]).encode(),
            },
            {"q": raw},
            {"due_before": raw},
            {"due_after": raw, "priority": raw},
            {"limit": raw, "completed": raw},
            {"tag": raw},
            {"remind_before": raw, "sort": sort.encode(), "tag": raw},
        ):
            never_5xx(api.request("GET", "/todos?" + query(**values), headers=alice))

    await run(client, lambda api: check(api))


async def test_body_fields(client: httpx.AsyncClient, alice: Headers) -> None:
    todo = await create_todo(client, alice)

    @EXAMPLES
    @given(
        field=st.sampled_from(
            [
                "title",
                "description",
                "completed",
                "priority",
                "due_at",
                "remind_at",
                "recurrence",
                "time_zone",
                "tags",
                "x",
            ]
        ),
        value=json_values,
    )
    def check(api: BlockingClient, field: str, value: Any) -> None:
        body = json.dumps({"title": "t", field: value}).encode()  # \\u escapes: valid JSON
        headers = {**alice, "Content-Type": "application/json"}
        never_5xx(api.request("POST", "/todos", content=body, headers=headers))
        changes = json.dumps({field: value}).encode()
        never_5xx(api.request("PATCH", f"/todos/{todo['id']}", content=changes, headers=headers))

    await run(client, lambda api: check(api))


async def test_tag_bodies(client: httpx.AsyncClient, alice: Headers) -> None:
    tag = (await client.post("/tags", json={"name": "mine"}, headers=alice)).json()
    todo = await create_todo(client, alice)

    @EXAMPLES
    @given(name=json_values, color=json_values, names=st.lists(any_text, max_size=25))
    def check(api: BlockingClient, name: Any, color: Any, names: list[str]) -> None:
        headers = {**alice, "Content-Type": "application/json"}
        for body in ({"name": name}, {"name": name, "color": color}, {"color": color}):
            content = json.dumps(body).encode()
            never_5xx(api.request("POST", "/tags", content=content, headers=headers))
            never_5xx(api.request("PATCH", f"/tags/{tag['id']}", content=content, headers=headers))
        content = json.dumps({"tags": names}).encode()
        never_5xx(api.request("PATCH", f"/todos/{todo['id']}", content=content, headers=headers))

    await run(client, lambda api: check(api))


RULE_PARTS = st.sampled_from(
    ["FREQ", "INTERVAL", "BYDAY", "BYMONTHDAY", "COUNT", "UNTIL", "BYSETPOS", "freq", "WKST"]
)
RULE_VALUES = st.one_of(
    st.sampled_from(["DAILY", "WEEKLY", "MONTHLY", "YEARLY", "HOURLY", "MO,WE", "-1", "31"]),
    st.integers(-(10**6), 10**12).map(str),
    st.sampled_from(["99991231T235959Z", "00010101T000000Z", "20300101T000000", ""]),
    any_text,
)


async def test_recurrence_rules_and_completions(client: httpx.AsyncClient, alice: Headers) -> None:
    """Made-up rules, zones and due dates (up to the edges of the calendar), and the completion
    that spawns a successor: never a 5xx."""

    @EXAMPLES
    @given(
        parts=st.lists(st.tuples(RULE_PARTS, RULE_VALUES), min_size=1, max_size=4),
        zone=st.sampled_from(["UTC", "Europe/Berlin", "Pacific/Kiritimati", "Etc/GMT+12", "x"]),
        due_at=st.sampled_from(
            [
                "2030-01-31T09:00:00Z",
                "9999-12-31T23:00:00Z",
                "0001-01-01T01:00:00Z",
                "2024-02-29T12:00:00+14:00",
                "2026-03-29T01:30:00Z",
            ]
        ),
    )
    def check(api: BlockingClient, parts: list[tuple[str, str]], zone: str, due_at: str) -> None:
        rule = ";".join(f"{key}={value}" for key, value in parts)
        body = {"title": "r", "recurrence": rule, "time_zone": zone, "due_at": due_at}
        created = api.request("POST", "/todos", json=body, headers=alice)
        never_5xx(created)
        if created.status_code == 201:
            url = f"/todos/{created.json()['id']}"
            never_5xx(api.request("PATCH", url, json={"completed": True}, headers=alice))

    await run(client, lambda api: check(api))


async def test_headers(client: httpx.AsyncClient, alice: Headers) -> None:
    todo = await create_todo(client, alice)

    @EXAMPLES
    @given(value=header_text)
    def check(api: BlockingClient, value: str) -> None:
        for name in ("If-Match", "Idempotency-Key", "X-Request-ID", "Authorization"):
            headers: dict[str, str | bytes] = {**alice, name: value.encode("latin-1")}
            never_5xx(
                api.request("PATCH", f"/todos/{todo['id']}", json={"title": "x"}, headers=headers)
            )
            never_5xx(api.request("POST", "/todos", json={"title": "x"}, headers=headers))

    await run(client, lambda api: check(api))


async def test_token_claims(client: httpx.AsyncClient, tokens: TokenFactory) -> None:
    @EXAMPLES
    @given(
        claim=st.sampled_from(["sub", "email", "name", "image", "emailVerified", "exp", "nbf"]),
        value=json_values,
    )
    def check(api: BlockingClient, claim: str, value: Any) -> None:
        now = int(time.time())
        claims = {"sub": f"hostile-{now}", "exp": now + 600, "email": f"h{now}@example.com"}
        token = jwt.encode({**claims, claim: value}, TEST_SECRET)
        response = api.request("GET", "/users/me", headers={"Authorization": f"Bearer {token}"})
        never_5xx(response)
        assert response.status_code in (200, 401, 409)

    await run(client, lambda api: check(api))
