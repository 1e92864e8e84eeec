"""The API as a browser reaches it: uvicorn serving `create_app()` on 127.0.0.1 in a thread of
the test process (a real HTTP server, so that Chromium enforces CORS on real responses), and
`with_cors`, which swaps the app's CORS options for the tests that prove a crippled CORS
configuration breaks the browser flow.
"""

import asyncio
import threading
from typing import Any

import uvicorn
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.middleware import Middleware

from tests.support import free_port


def _cors_index(app: FastAPI) -> int:
    for index, middleware in enumerate(app.user_middleware):
        factory: object = middleware.cls
        if factory is CORSMiddleware:
            return index
    raise RuntimeError("the app has no CORSMiddleware: is CORS_ORIGINS set?")


def cors_options(app: FastAPI) -> dict[str, Any]:
    """The keyword arguments the app's CORSMiddleware is built with."""
    return dict(app.user_middleware[_cors_index(app)].kwargs)


def with_cors(app: FastAPI, **options: Any) -> FastAPI:
    """`app` with these keyword arguments of its CORSMiddleware replaced (backend/main.py's
    `create_app` adds it when CORS_ORIGINS is set). Only before the app's first request or
    lifespan event: Starlette builds the middleware stack then."""
    if app.middleware_stack is not None:
        raise RuntimeError("the app has already built its middleware stack")
    index = _cors_index(app)
    kwargs: dict[str, Any] = {**app.user_middleware[index].kwargs, **options}
    app.user_middleware[index] = Middleware(CORSMiddleware, **kwargs)
    return app


class ApiThread:
    """`app` served by uvicorn on 127.0.0.1:<free port> in a daemon thread; async start/stop."""

    def __init__(self, app: FastAPI) -> None:
        self.port = free_port()
        # log_config=None: leave the process's logging alone (other tests assert on it).
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_config=None,
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=5,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name=f"api-{self.port}", daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, within: float = 30) -> "ApiThread":
        self.thread.start()
        async with asyncio.timeout(within):
            while not self.server.started:
                if not self.thread.is_alive():
                    raise RuntimeError("the API did not start: see the captured log")
                await asyncio.sleep(0.02)
        return self

    async def stop(self) -> None:
        self.server.should_exit = True
        await asyncio.to_thread(self.thread.join, 15)
