"""What the browser tests share besides fixtures: the skip conditions (with their reasons), the
started servers (`Stack`), and `serving`, which runs an app on a real port for a while."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest
from fastapi import FastAPI

from backend.settings import Settings
from tests.better_auth import harness
from tests.better_auth.harness import BetterAuthServer
from tests.e2e.browser.chromium import find_chromium, missing_chromium_reason
from tests.e2e.browser.servers import ApiThread

CHROMIUM = find_chromium()
NODE_REASON = "node and npm are needed (Better Auth, openapi-typescript, tsc): none on PATH"
CHROMIUM_REASON = f"Chromium is needed for the browser tests: {missing_chromium_reason()}"
needs_node = pytest.mark.skipif(not harness.node_available(), reason=NODE_REASON)
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason=CHROMIUM_REASON)


@dataclass(frozen=True)
class Stack:
    better_auth: BetterAuthServer
    settings: Settings  # the API's: JWKS mode, CORS_ORIGINS = [the page's origin]
    api: ApiThread

    @property
    def page_origin(self) -> str:
        return self.better_auth.base_url  # http://localhost:<port>

    @property
    def page_url(self) -> str:
        return f"{self.page_origin}/e2e/index.html"

    @property
    def disallowed_origin(self) -> str:
        return self.better_auth.local_url  # http://127.0.0.1:<port>: same server, other origin

    @property
    def disallowed_page_url(self) -> str:
        return f"{self.disallowed_origin}/e2e/index.html"


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[ApiThread]:
    api = await ApiThread(app).start()
    try:
        yield api
    finally:
        await api.stop()
