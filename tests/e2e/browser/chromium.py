"""Headless Chromium driven over the DevTools protocol (CDP), with `websockets`: no WebDriver,
no browser download. `Chromium` is one browser process; `Chromium.page()` an isolated tab
(a browser context of its own: no cookies shared between pages) that can load a URL and
evaluate JavaScript, and that keeps what the page logged (console, network errors such as
Chromium's "blocked by CORS policy" messages) for assertion messages.
"""

import asyncio
import contextlib
import itertools
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Self

from websockets.asyncio.client import ClientConnection, connect

from tests.production.processes import kill_group

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
START_TIMEOUT = 20.0
CALL_TIMEOUT = 30.0
_DEVTOOLS_LINE = re.compile(r"DevTools listening on (ws://\S+)")


class ChromiumError(RuntimeError):
    """Starting Chromium, or a DevTools call, failed."""


def find_chromium() -> str | None:
    """$CHROMIUM if set, else the first Chromium or Chrome on PATH."""
    configured = os.environ.get("CHROMIUM")
    if configured:
        return configured if Path(configured).is_file() else None
    return next((path for name in CANDIDATES if (path := shutil.which(name))), None)


def missing_chromium_reason() -> str:
    configured = os.environ.get("CHROMIUM")
    if configured:
        return f"CHROMIUM={configured} is not a file"
    return (
        f"no Chromium or Chrome on PATH ({', '.join(CANDIDATES)}): apt-get install chromium, "
        "or set CHROMIUM=/path/to/chrome"
    )


class Chromium:
    """`async with Chromium(binary) as browser:` a headless Chromium on a DevTools websocket."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self._process: subprocess.Popen[str] | None = None
        self._profile: str | None = None
        self._socket: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._ids = itertools.count(1)
        self._calls: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._pages: dict[str, Page] = {}  # by DevTools session id
        self._stderr: list[str] = []

    def _spawn(self) -> subprocess.Popen[str]:
        self._profile = tempfile.mkdtemp(prefix="todo-api-chromium-")
        return subprocess.Popen(
            [
                self.binary,
                "--headless=new",
                "--no-sandbox",  # root in containers and CI
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--no-proxy-server",  # never send the test's local requests through a proxy
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                f"--user-data-dir={self._profile}",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its whole process group is killed on the way out
        )

    async def __aenter__(self) -> Self:
        self._process = self._spawn()
        found: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        threading.Thread(target=self._read_stderr, args=(found,), daemon=True).start()
        try:
            url = await asyncio.wait_for(found, START_TIMEOUT)
            self._socket = await connect(url, max_size=None, proxy=None, ping_interval=None)
        except (TimeoutError, OSError, ChromiumError) as error:
            await self.close()
            raise ChromiumError(f"Chromium did not start: {error!r}\n{self.stderr}") from error
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def _read_stderr(self, found: asyncio.Future[str]) -> None:
        assert self._process is not None
        assert self._process.stderr is not None
        loop = found.get_loop()
        for line in self._process.stderr:
            self._stderr.append(line)
            match = _DEVTOOLS_LINE.search(line)
            if match and not found.done():
                loop.call_soon_threadsafe(_resolve, found, match.group(1))
        if not found.done():
            error = ChromiumError("Chromium exited before it listened for DevTools")
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                loop.call_soon_threadsafe(_fail, found, error)

    @property
    def stderr(self) -> str:
        return "".join(self._stderr[-50:])

    async def close(self) -> None:
        if self._socket is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.call("Browser.close"), 5)
            await self._socket.close()
            self._socket = None
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
            self._reader = None
        if self._process is not None:
            await asyncio.to_thread(kill_group, self._process, 5)
            self._process = None
        if self._profile is not None:
            shutil.rmtree(self._profile, ignore_errors=True)
            self._profile = None

    async def version(self) -> str:
        return str((await self.call("Browser.getVersion"))["product"])

    async def call(
        self, method: str, params: dict[str, Any] | None = None, session_id: str | None = None
    ) -> dict[str, Any]:
        if self._socket is None:
            raise ChromiumError("Chromium is not running")
        message: dict[str, Any] = {"id": next(self._ids), "method": method, "params": params or {}}
        if session_id is not None:
            message["sessionId"] = session_id
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._calls[message["id"]] = future
        try:
            await self._socket.send(json.dumps(message))
            return await asyncio.wait_for(future, CALL_TIMEOUT)
        finally:
            self._calls.pop(message["id"], None)

    async def _read(self) -> None:
        assert self._socket is not None
        try:
            async for raw in self._socket:
                message = json.loads(raw)
                if "id" in message:
                    future = self._calls.get(message["id"])
                    if future is None or future.done():
                        continue
                    if "error" in message:
                        future.set_exception(ChromiumError(f"{message['error']}"))
                    else:
                        future.set_result(message.get("result", {}))
                elif (page := self._pages.get(message.get("sessionId", ""))) is not None:
                    page.on_event(message["method"], message.get("params", {}))
        finally:
            for future in self._calls.values():
                if not future.done():
                    future.set_exception(ChromiumError(f"DevTools connection lost\n{self.stderr}"))

    @asynccontextmanager
    async def page(self) -> AsyncIterator["Page"]:
        """A new tab in a new browser context (its own cookies and storage)."""
        context = (await self.call("Target.createBrowserContext"))["browserContextId"]
        target = await self.call(
            "Target.createTarget", {"url": "about:blank", "browserContextId": context}
        )
        attached = await self.call(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )
        page = Page(self, attached["sessionId"])
        self._pages[page.session_id] = page
        try:
            for domain in ("Runtime", "Log", "Page"):
                await page.call(f"{domain}.enable")
            yield page
        finally:
            self._pages.pop(page.session_id, None)
            with contextlib.suppress(ChromiumError, TimeoutError):
                await self.call("Target.disposeBrowserContext", {"browserContextId": context})


def _resolve(future: asyncio.Future[str], value: str) -> None:
    if not future.done():
        future.set_result(value)


def _fail(future: asyncio.Future[str], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)


class Page:
    def __init__(self, browser: Chromium, session_id: str) -> None:
        self.browser = browser
        self.session_id = session_id
        self.log: list[str] = []  # console messages, exceptions and browser log entries

    async def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self.browser.call(method, params, self.session_id)

    def on_event(self, method: str, params: dict[str, Any]) -> None:
        if method == "Runtime.consoleAPICalled":
            values = (arg.get("value", arg.get("description", "")) for arg in params["args"])
            text = " ".join(str(value) for value in values)
            self.log.append(f"console.{params['type']}: {text}")
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            description = details.get("exception", {}).get("description", details.get("text"))
            self.log.append(f"exception: {description}")
        elif method == "Log.entryAdded":
            entry = params["entry"]
            self.log.append(f"{entry['source']} {entry['level']}: {entry['text']}")

    def log_text(self) -> str:
        return "\n".join(self.log) or "(nothing logged)"

    async def goto(self, url: str, ready: str, within: float = 15) -> None:
        """Load `url` and wait until the JavaScript expression `ready` is true."""
        navigated = await self.call("Page.navigate", {"url": url})
        if navigated.get("errorText"):
            raise ChromiumError(f"loading {url}: {navigated['errorText']}\n{self.log_text()}")
        try:
            async with asyncio.timeout(within):
                while True:
                    if await self.evaluate(f"Boolean({ready})"):
                        return
                    await asyncio.sleep(0.02)
        except TimeoutError:
            raise ChromiumError(
                f"{url}: `{ready}` still false after {within:g}s\n{self.log_text()}"
            ) from None

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (awaited if it is a promise), as JSON data."""
        result = await self.call(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": True, "returnByValue": True},
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            description = details.get("exception", {}).get("description", details.get("text"))
            raise ChromiumError(f"{expression[:200]}: {description}\n{self.log_text()}")
        return result["result"].get("value")
