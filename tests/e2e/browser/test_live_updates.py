"""Live updates in the browser: a page signed in through Better Auth reads GET /events with
fetch and a stream reader (page/events.js: EventSource cannot send a bearer token), from an
API on another origin, and sees a change made through ANOTHER API process on the same database
within a moment.

Both API processes run as in production (`todo-api serve`, JWKS from Better Auth, CORS_ORIGINS
= the page's origin) in LISTEN mode (DATABASE_DIRECT_URL set), with polling slowed to 30 s: a
change from the other instance can only arrive this fast by LISTEN/NOTIFY. The event's `id`
works as `since` for GET /todos/changes; and when the page's instance restarts, the reader
reconnects (after the `retry:` hint, preflighted with Last-Event-ID) and gets the change
committed while it was away. A position the API cannot resume from (410) ends in a "resync"
event, not in endless retries.

Skipped, with the reason shown, where node/npm or Chromium is not installed.
"""

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from backend import migrations
from tests.better_auth.harness import BetterAuthServer
from tests.e2e.browser.chromium import Chromium, ChromiumError, Page
from tests.e2e.browser.stack import needs_chromium, needs_node
from tests.production.api import ApiServer, ApiServers
from tests.support import bearer, make_settings, scratch_database

pytestmark = [needs_node, needs_chromium]
PASSWORD = "correct horse battery staple"
NOTIFY_WITHIN = 3.0  # seconds from a commit on one instance to the event on the other


@dataclass
class Instances:
    """Two API processes on one database. `stop_a` stops the first (SIGTERM: its open streams
    end with a `retry:` hint), `start_a_again` starts it again on the same port."""

    servers: ApiServers
    a: ApiServer
    b: ApiServer

    async def stop_a(self) -> None:
        await asyncio.to_thread(self.a.stop)

    async def start_a_again(self) -> None:
        again = ApiServer(self.servers.workdir, self.a.env, port=self.a.port, name="a-again")
        self.servers.servers.append(again)
        self.a = await asyncio.to_thread(again.start)


@pytest.fixture
async def instances(
    database_url: str, better_auth: BetterAuthServer, tmp_path: Path
) -> AsyncIterator[Instances]:
    async with scratch_database(database_url, "browser_live_" + secrets.token_hex(4)) as url:
        await migrations.upgrade(url, make_settings(url, tmp_path))
        settings: dict[str, Any] = {
            "auth_secret": None,
            "auth_jwks_url": better_auth.jwks_url,
            "auth_issuer": better_auth.issuer,
            "auth_audience": better_auth.audience,
            "cors_origins": better_auth.base_url,
            "database_direct_url": url,
            "events_poll_seconds": 30,
        }
        servers = ApiServers(tmp_path)
        try:
            a, b = await asyncio.gather(
                asyncio.to_thread(servers.start, url, name="a", **settings),
                asyncio.to_thread(servers.start, url, name="b", **settings),
            )
            yield Instances(servers, a, b)
        finally:
            await asyncio.to_thread(servers.stop_all)


def explain(page: Page, instances: Instances) -> str:
    logs = "\n".join(f"--- {s.name}\n{s.logs()[-3000:]}" for s in instances.servers.servers)
    return f"page log:\n{page.log_text()}\nAPI logs:\n{logs}"


async def wait_for(page: Page, expression: str, within: float, why: str) -> Any:
    """The value of `expression` on the page once it is truthy."""
    deadline = time.monotonic() + within
    while not (value := await page.evaluate(expression)):
        if time.monotonic() > deadline:
            raise ChromiumError(f"{why}: `{expression}` still false after {within:g}s")
        await asyncio.sleep(0.02)
    return value


async def events(page: Page, count: int, within: float) -> list[dict[str, Any]]:
    """The first `count` events the page's stream delivered, once it has."""
    delivered = await wait_for(
        page,
        f"window.live.events.length >= {count} && window.live.events",
        within,
        f"{count} event(s) expected",
    )
    return list(delivered)


async def test_a_page_sees_a_change_made_through_another_instance(
    browser: Chromium, better_auth: BetterAuthServer, instances: Instances
) -> None:
    email = f"live-{secrets.token_hex(4)}@example.com"
    user = await asyncio.to_thread(better_auth.sign_up, email, PASSWORD, "Ada")
    page_url = f"{better_auth.base_url}/e2e/index.html"
    a = json.dumps(instances.a.base_url)
    async with browser.page() as page:
        try:
            await page.goto(page_url, ready="window.live")
            # Signed in through Better Auth, by the page: its session cookie gives the JWT.
            signed_in = await page.evaluate(
                f"window.live.signIn({json.dumps(email)}, {json.dumps(PASSWORD)})"
            )
            assert signed_in["id"] == user.id
            jwt = await page.evaluate("window.live.token()")
            await page.evaluate(f"window.live.open({a})")
            await wait_for(page, "window.live.stream.connected", 10, "the stream did not open")

            async with httpx.AsyncClient(
                base_url=instances.b.base_url, headers=bearer(jwt), trust_env=False, timeout=10
            ) as other:
                # A change through the OTHER instance, with the page user's JWT.
                created = await other.post("/todos", json={"title": "Buy milk"})
                committed = time.time()  # the response comes right after the commit
                assert created.status_code == 201, created.text
                todo = created.json()
                first = (await events(page, 1, within=10))[0]
                latency = first["at"] / 1000 - committed
                assert latency < NOTIFY_WITHIN, f"the event came {latency:.2f}s after the commit"
                assert first["type"] == "todo"
                assert first["data"] == {"op": "upsert", "todo": todo}

                # The event's id as `since`: nothing after it yet ...
                after_first = await page.evaluate(
                    f"window.live.changes({a}, {json.dumps(first['id'])})"
                )
                assert (after_first["changes"], after_first["more"]) == ([], False)
                # ... then exactly the next change, which the stream delivers alike.
                patched = await other.patch(
                    f"/todos/{todo['id']}",
                    json={"completed": True},
                    headers={"If-Match": created.headers["etag"]},
                )
                assert patched.status_code == 200, patched.text
                second = (await events(page, 2, within=NOTIFY_WITHIN))[1]
                assert second["data"] == {"op": "upsert", "todo": patched.json()}
                since_first = await page.evaluate(
                    f"window.live.changes({a}, {json.dumps(first['id'])})"
                )
                assert since_first["changes"] == [second["data"]]

                # The page's instance restarts: its stream ends (with a `retry:` hint), and a
                # change is committed meanwhile through the other one.
                await instances.stop_a()
                await wait_for(page, "!window.live.stream.connected", 10, "the stream did not end")
                deleted = await other.delete(f"/todos/{todo['id']}")
                assert deleted.status_code == 204, deleted.text
                await instances.start_a_again()
                # The reader reconnects with Last-Event-ID: a stream without it would start
                # from now, and never show the delete.
                delivered = await events(page, 3, within=30)
            assert delivered[2]["type"] == "todo"
            assert delivered[2]["data"] == {"op": "delete", "id": todo["id"]}
            assert len(await page.evaluate("window.live.events")) == 3  # nothing twice
            await wait_for(page, "window.live.stream.connected", 5, "not connected again")
            await page.evaluate("window.live.stream.close()")

            # A position the API cannot resume from (here: another user's): 410, which the
            # reader reports as a resync (and stops) rather than retrying forever.
            eve = await asyncio.to_thread(
                better_auth.sign_up, f"eve-{secrets.token_hex(4)}@example.com", PASSWORD, "Eve"
            )
            async with httpx.AsyncClient(base_url=instances.b.base_url, trust_env=False) as api:
                changes = await api.get("/todos/changes", headers=bearer(eve.jwt))
                assert changes.status_code == 200, changes.text
            others = json.dumps(changes.json()["next"])
            resync = page.evaluate(f"window.live.firstEvent({a}, {others})")
            assert await asyncio.wait_for(resync, 10) == {"type": "resync"}
        except (AssertionError, ChromiumError) as error:
            raise AssertionError(f"{error}\n{explain(page, instances)}") from error
