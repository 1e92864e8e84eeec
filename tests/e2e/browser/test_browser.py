"""The API as its browser app uses it: a page on Better Auth's origin signs up and in (cookie
session), gets a JWT from the `jwt` plugin and calls the API on another origin with `fetch`,
through the typed client compiled from client/src (checked against the live /openapi.json).

Chromium enforces CORS: the API must allow the page's origin and its request headers
(Authorization, Idempotency-Key, If-Match) and expose the response headers the client reads
(ETag, Location). From an origin the API does not allow, every call fails as the browser refuses
it; and the same flow with a crippled CORS configuration fails where it should.

Skipped, with the reason shown, where node/npm or Chromium is not installed.
"""

import asyncio
import json
import secrets
from typing import Any

import httpx
import pytest

from backend.main import create_app
from tests.e2e.browser.chromium import Chromium, Page
from tests.e2e.browser.servers import cors_options, with_cors
from tests.e2e.browser.stack import Stack, needs_chromium, needs_node, serving
from tests.support import bearer

pytestmark = [needs_node, needs_chromium, pytest.mark.usefixtures("compiled")]
PASSWORD = "correct horse battery staple"


def explain(report: Any, page: Page) -> str:
    return f"what the page saw:\n{json.dumps(report, indent=2)}\npage log:\n{page.log_text()}"


async def run_allowed_flow(
    browser: Chromium, stack: Stack, api_base: str, *, sign_up: bool = True
) -> tuple[Any, Page]:
    """window.e2e.allowedOrigin() on the page served from the allowed origin. Without
    `sign_up` the account is made beforehand (faster) and the page only signs in."""
    email = f"ada-{secrets.token_hex(4)}@example.com"
    if not sign_up:
        await asyncio.to_thread(stack.better_auth.sign_up, email, PASSWORD, "Ada")
    config = {
        "apiBase": api_base,
        "email": email,
        "password": PASSWORD,
        "name": "Ada",
        "signUp": sign_up,
    }
    async with browser.page() as page:
        await page.goto(stack.page_url, ready="window.e2e")
        report = await page.evaluate(f"window.e2e.allowedOrigin({json.dumps(config)})")
        return report, page


async def test_the_browser_app_flow_from_the_allowed_origin(
    browser: Chromium, stack: Stack
) -> None:
    report, page = await run_allowed_flow(browser, stack, stack.api.base_url)
    assert report["failure"] is None, explain(report, page)
    steps = report["steps"]
    assert report["origin"] == stack.page_origin != stack.api.base_url

    user = steps["signUp"]
    assert steps["signIn"]["id"] == user["id"]
    token = steps["token"]
    assert token["parts"] == 3
    assert token["header"]["alg"] == "EdDSA"
    assert token["payload"]["sub"] == user["id"]
    assert token["payload"]["iss"] == token["payload"]["aud"] == stack.page_origin
    assert steps["sessionJwt"] == {"status": 200, "meId": user["id"]}
    assert (steps["me"]["id"], steps["me"]["email"]) == (user["id"], user["email"])

    created = steps["create"]
    todo_id = created["todo"]["id"]
    # Location and ETag were readable from JavaScript: CORS exposes them.
    assert created["location"] == f"/todos/{todo_id}"
    assert created["etag"] == '"1"'
    assert created["replayed"] is False
    assert created["title"] == "Buy milk"
    assert created["todo"]["tags"] == ["home"]
    # The same Idempotency-Key again: the stored response, marked as a replay.
    assert steps["replay"] == {
        "id": todo_id,
        "etag": '"1"',
        "location": f"/todos/{todo_id}",
        "replayed": True,
    }
    assert steps["list"] == {"ids": [todo_id], "next_cursor": None}
    assert steps["get"] == '"1"'
    assert steps["patch"] == {
        "etag": '"2"',
        "title": "Buy oat milk",
        "completed": True,
        "version": 2,
    }
    # A stale If-Match: 412, read by the page as problem+json.
    for stale in (steps["stalePatch"], steps["staleDelete"]):
        assert stale["name"] == "ApiError"
        assert stale["status"] == 412
        assert stale["contentType"].startswith("application/problem+json")
        assert stale["problemType"] == "precondition-failed"
        assert stale["problem"]["status"] == 412
        assert stale["problem"]["type"].endswith("/problems#precondition-failed")
    assert steps["delete"] == "deleted"
    assert steps["afterDelete"] == {"ids": []}
    assert steps["getDeleted"]["status"] == 404
    assert steps["getDeleted"]["problemType"] == "not-found"
    assert steps["tokenAgain"] == 3


async def test_calls_from_an_origin_the_api_does_not_allow_fail_in_the_browser(
    browser: Chromium, stack: Stack
) -> None:
    # A user, a JWT and a todo, made outside the browser: the JWT is valid, only CORS can fail.
    user = stack.better_auth.sign_up(f"eve-{secrets.token_hex(4)}@example.com", PASSWORD, "Eve")
    async with httpx.AsyncClient(base_url=stack.api.base_url, trust_env=False) as api:
        created = await api.post("/todos", json={"title": "keep"}, headers=bearer(user.jwt))
        assert created.status_code == 201, created.text
        todo_id, etag = created.json()["id"], created.headers["etag"]

        config = {"apiBase": stack.api.base_url, "token": user.jwt, "todoId": todo_id, "etag": etag}
        async with browser.page() as page:
            await page.goto(stack.disallowed_page_url, ready="window.e2e")
            report = await page.evaluate(f"window.e2e.disallowedOrigin({json.dumps(config)})")
        assert report["origin"] == stack.disallowed_origin
        assert report["failure"] is None, explain(report, page)
        # fetch() rejected every call with a TypeError: the browser refused to let the page
        # see the answer (here: no request beyond the failed preflight was sent).
        assert set(report["steps"]) == {"me", "list", "create", "get", "patch", "delete"}
        for step, outcome in report["steps"].items():
            assert outcome == {"name": "TypeError", "message": "Failed to fetch"}, (
                step,
                explain(report, page),
            )
        assert "has been blocked by CORS policy" in page.log_text()

        # The API refused the preflight for that origin ...
        preflight = await api.options(
            "/todos",
            headers={
                "Origin": stack.disallowed_origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type,idempotency-key",
            },
        )
        assert preflight.status_code == 400
        assert "access-control-allow-origin" not in preflight.headers
        # ... so nothing changed: no todo created, patched or deleted.
        listed = await api.get("/todos", headers=bearer(user.jwt))
        assert [todo["id"] for todo in listed.json()["items"]] == [todo_id]
        fetched = await api.get(f"/todos/{todo_id}", headers=bearer(user.jwt))
        assert (fetched.json()["title"], fetched.headers["etag"]) == ("keep", etag)


# --- The browser test catches CORS regressions ------------------------------------------------
# The API of backend/main.py with one part of its CORS configuration taken away; everything else
# is as in production. Each case must break the browser flow, at the step and with the error that
# the regression causes.


def without(header: str) -> dict[str, Any]:
    """The allowed request headers without `header` (which the real configuration allows)."""

    def change(options: dict[str, Any]) -> dict[str, Any]:
        allowed = options["allow_headers"]
        assert header.lower() in (name.lower() for name in allowed), allowed
        return {"allow_headers": [name for name in allowed if name.lower() != header.lower()]}

    return {"change": change, "header": header}


# Starlette answers a preflight asking for a header it does not allow with a 400.
PREFLIGHT_REFUSED = (
    "has been blocked by CORS policy: Response to preflight request doesn't pass access control "
    "check: It does not have HTTP ok status"
)
CRIPPLED = {
    "no-expose-headers": {
        "change": lambda options: {"expose_headers": []},
        "step": "create",
        "error": ("Error", "201 response without a readable ETag header"),
        "log": None,
    },
    "idempotency-key-not-allowed": {
        **without("Idempotency-Key"),
        "step": "create",
        "error": ("TypeError", "Failed to fetch"),
        "log": PREFLIGHT_REFUSED,
    },
    "if-match-not-allowed": {
        **without("If-Match"),
        "step": "patch",
        "error": ("TypeError", "Failed to fetch"),
        "log": PREFLIGHT_REFUSED,
    },
}


@pytest.mark.parametrize("case", CRIPPLED, ids=list(CRIPPLED))
async def test_a_crippled_cors_configuration_breaks_the_browser_flow(
    case: str, browser: Chromium, stack: Stack
) -> None:
    crippled = CRIPPLED[case]
    app = create_app(stack.settings)
    changes = crippled["change"](cors_options(app))
    async with serving(with_cors(app, **changes)) as api:
        report, page = await run_allowed_flow(browser, stack, api.base_url, sign_up=False)
    failure = report["failure"]
    assert failure is not None, f"the flow passed with CORS {changes}: {explain(report, page)}"
    name, message = crippled["error"]
    assert (failure["step"], failure["name"]) == (crippled["step"], name), explain(report, page)
    assert message in failure["message"], explain(report, page)
    if crippled["log"]:
        assert crippled["log"] in page.log_text()
