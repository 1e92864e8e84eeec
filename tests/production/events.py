"""A Server-Sent Events client for the production tests: GET /events over httpx, its bytes
parsed into `Record`s as they arrive, and every wait bounded so that no test can hang.

A record is one block of the stream (the text up to a blank line): its `event:`, `id:`,
`data:` and `retry:` fields and its `:` comments, with the moment it arrived. The API writes
each event, heartbeat and `retry:` hint as a block of its own.
"""

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

CONNECT_TIMEOUT = 10.0  # seconds until the response's status and headers
READ_TIMEOUT = 30.0  # seconds of silence after which the reader gives up
CLOSE_TIMEOUT = 5.0


@dataclass(frozen=True)
class Record:
    """One block of the stream."""

    at: float  # time.monotonic() when its last byte arrived
    raw: bytes
    event: str | None = None
    id: str | None = None
    data: str | None = None  # `data:` lines joined with "\n"
    retry: int | None = None
    comments: tuple[str, ...] = ()

    @property
    def is_heartbeat(self) -> bool:
        return self.comments == ("heartbeat",) and self.event is None and self.data is None

    @property
    def is_retry(self) -> bool:
        return self.retry is not None and self.event is None and self.data is None

    @property
    def is_event(self) -> bool:
        return self.data is not None

    def json(self) -> Any:
        assert self.data is not None, self
        return json.loads(self.data)


def parse_block(block: bytes, at: float) -> Record:
    """A block's fields, as the SSE spec reads them (`name: value`, one optional space)."""
    fields: dict[str, Any] = {"at": at, "raw": block}
    data: list[str] = []
    comments: list[str] = []
    for line in block.decode().split("\n"):
        if not line:
            continue
        if line.startswith(":"):
            comments.append(line[1:].removeprefix(" "))
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
        elif name == "retry":
            fields["retry"] = int(value)
        elif name in {"event", "id"}:
            fields[name] = value
        else:
            raise AssertionError(f"unexpected field {name!r} in {block!r}")
    if data:
        fields["data"] = "\n".join(data)
    return Record(**fields, comments=tuple(comments))


class StreamEnded(Exception):
    """The server closed the stream while a record was awaited."""


@dataclass
class EventStream:
    """An open GET /events: its response, and its records as they come (`next`, `until`)."""

    response: httpx.Response
    records: list[Record] = field(default_factory=list)
    first_bytes: bytes = b""
    ended_at: float | None = None  # time.monotonic() when the server closed the stream
    error: BaseException | None = None  # what ended the reader, if not the server's close
    _queue: asyncio.Queue[Record | None] = field(default_factory=asyncio.Queue)
    _reader: asyncio.Task[None] | None = None

    @property
    def status_code(self) -> int:
        return self.response.status_code

    @property
    def ended(self) -> bool:
        return self.ended_at is not None

    def start(self) -> None:
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        buffer = b""
        try:
            async for chunk in self.response.aiter_raw():
                if not self.first_bytes:
                    self.first_bytes = chunk
                buffer += chunk.replace(b"\r\n", b"\n")
                while b"\n\n" in buffer:
                    block, buffer = buffer.split(b"\n\n", 1)
                    record = parse_block(block, time.monotonic())
                    self.records.append(record)
                    self._queue.put_nowait(record)
            self.ended_at = time.monotonic()
        except Exception as exc:  # a read timeout, a reset: the stream is over for the test
            self.error = exc
        finally:
            self._queue.put_nowait(None)

    async def next(self, within: float) -> Record:
        """The next record; TimeoutError if none comes within `within` s, StreamEnded at the end."""
        async with asyncio.timeout(within):
            record = await self._queue.get()
        if record is None:
            self._queue.put_nowait(None)  # every later call ends too
            raise StreamEnded(self.error)
        return record

    async def until(self, predicate: Callable[[Record], bool], within: float) -> list[Record]:
        """The records up to and including the first that satisfies `predicate`."""
        deadline = time.monotonic() + within
        seen: list[Record] = []
        while True:
            record = await self.next(max(deadline - time.monotonic(), 0.001))
            seen.append(record)
            if predicate(record):
                return seen

    async def events(self, count: int, within: float) -> list[Record]:
        """The next `count` events (heartbeats and hints skipped), all within `within` s."""
        deadline = time.monotonic() + within
        found: list[Record] = []
        while len(found) < count:
            record = await self.next(max(deadline - time.monotonic(), 0.001))
            if record.is_event:
                found.append(record)
        return found

    async def collect(self, seconds: float) -> list[Record]:
        """Every record that arrives in the next `seconds` s (fewer if the stream ends)."""
        deadline = time.monotonic() + seconds
        found: list[Record] = []
        with contextlib.suppress(TimeoutError, StreamEnded):
            while True:
                found.append(await self.next(max(deadline - time.monotonic(), 0.001)))
        return found

    async def end(self, within: float) -> list[Record]:
        """The records until the server closes the stream; TimeoutError if not within `within` s."""
        async with asyncio.timeout(within):
            assert self._reader is not None
            await asyncio.shield(self._reader)
        return await self.collect(0)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader
        with contextlib.suppress(Exception):
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await self.response.aclose()


@asynccontextmanager
async def open_stream(
    base_url: str,
    headers: Mapping[str, str],
    *,
    last_event_id: str | None = None,
    read_timeout: float = READ_TIMEOUT,
) -> AsyncIterator[EventStream]:
    """GET /events with a client (and so a connection) of its own: leaving the block closes
    the connection, as a browser tab going away would. A non-200 answer is read whole and
    yielded as is (`stream.response`), without a reader."""
    request_headers = {"Accept": "text/event-stream", **headers}
    if last_event_id is not None:
        request_headers["Last-Event-ID"] = last_event_id
    timeout = httpx.Timeout(CONNECT_TIMEOUT, read=read_timeout)
    async with httpx.AsyncClient(base_url=base_url, timeout=timeout) as client:
        request = client.build_request("GET", "/events", headers=request_headers)
        async with asyncio.timeout(CONNECT_TIMEOUT):
            response = await client.send(request, stream=True)
        stream = EventStream(response)
        try:
            if response.status_code == 200:
                stream.start()
            else:
                async with asyncio.timeout(CONNECT_TIMEOUT):
                    await response.aread()
            yield stream
        finally:
            await stream.close()


async def refused(base_url: str, headers: Mapping[str, str], **options: Any) -> httpx.Response:
    """GET /events expected to be answered with an error status: the whole response."""
    async with open_stream(base_url, headers, **options) as stream:
        assert stream.status_code != 200, "the stream was accepted"
        return stream.response
