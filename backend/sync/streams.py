"""One event stream (GET /events): Server-Sent Events from the user's change log.

The stream catches up from its position, then sleeps until the hub wakes it (backend.sync
.hub), a heartbeat is due, the bearer token expires or the server shuts down; the last two
end it with a `retry:` hint, so a client reconnects (with a fresh token, to an instance that
is not stopping) and resumes from its Last-Event-ID without a gap.
"""

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator

import msgspec
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from backend.errors import ProblemError, is_outage
from backend.sync.hub import EventHub, Subscription
from backend.sync.records import Position, Reminded, change_of
from backend.sync.service import SyncService

logger = logging.getLogger(__name__)

BATCH = 200  # log entries read per query while catching up
RETRY_MS = (1_000, 4_000)  # the reconnect delay a closing stream suggests, spread randomly
_encode = msgspec.json.Encoder().encode


def _retry_hint(last_event_id: str | None = None) -> bytes:
    delay = random.randint(*RETRY_MS)  # noqa: S311 - not for security
    if last_event_id is None:
        return b"retry: %d\n\n" % delay
    return b"retry: %d\nid: %s\n\n" % (delay, last_event_id.encode())


async def events(
    sync: SyncService,
    hub: EventHub,
    subscription: Subscription,
    *,
    heartbeat_seconds: float,
    expires_at: float,
) -> AsyncIterator[bytes]:
    """The stream's bytes; `subscription.position` says where it starts."""
    try:
        # First the reconnect delay, and the start as the last event id (a block without
        # data sets it without dispatching an event): a stream that ends before its first
        # event still resumes from where it began, not from whenever it reconnects.
        start = sync.token(subscription.position) if subscription.position else None
        yield _retry_hint(start)
        while not hub.closing:
            subscription.wake.clear()  # before reading: a change from now on wakes it again
            async for event in _catch_up(sync, subscription):
                yield event
            remaining = expires_at - time.time()
            if remaining <= 0:
                break  # the token expired: the client reconnects with a fresh one
            try:
                async with asyncio.timeout(min(heartbeat_seconds, remaining)):
                    await subscription.wake.wait()
            except TimeoutError:
                yield b": heartbeat\n\n"
        yield _retry_hint()
    except ProblemError as exc:  # the log cannot be read (database down, resync needed)
        logger.warning("event stream ended: %s", exc.detail or exc.slug)
        yield _retry_hint()
    except Exception as exc:
        if not is_outage(exc):
            raise
        logger.warning("event stream ended: database unavailable (%s)", type(exc).__name__)
        yield _retry_hint()
    finally:
        hub.unsubscribe(subscription)


async def _catch_up(sync: SyncService, subscription: Subscription) -> AsyncIterator[bytes]:
    while True:
        page = await sync.read(subscription.position, BATCH, reminders=True)
        for entry in page.entries:
            subscription.position = entry.position
            change = change_of(entry)
            if change is None:
                continue
            kind = b"reminder" if isinstance(change, Reminded) else b"todo"
            token = sync.token(entry.position).encode()
            yield b"event: %s\nid: %s\ndata: %s\n\n" % (kind, token, _encode(change))
        if len(page.entries) < BATCH:
            # Caught up: every entry up to the head is read, gaps in the numbers included.
            head = Position.after_all_of(page.head)
            if subscription.position is None or head > subscription.position:
                subscription.position = head
            return


class EventStreamResponse(StreamingResponse):
    """`text/event-stream`, ended as soon as the client goes away.

    Starlette stops listening for the client's disconnect when the server speaks ASGI spec
    2.4, and relies on the next write failing instead; a stream that sleeps between
    heartbeats would then hold its slot (and its user's stream quota) for up to 15 s after a
    tab closed. So this response always listens.
    """

    media_type = "text/event-stream"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        streaming = asyncio.create_task(self.stream_response(send))
        listening = asyncio.create_task(_until_disconnect(receive))
        try:
            await asyncio.wait((streaming, listening), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (streaming, listening):
                task.cancel()
            await asyncio.gather(streaming, listening, return_exceptions=True)
            # Cancelled while it waited on `send` (a client that stopped reading), the
            # stream was suspended at a `yield`, not inside it: close it now, so that it
            # gives its slot back at once rather than whenever it is garbage-collected.
            close = getattr(self.body_iterator, "aclose", None)
            if close is not None:
                await close()
        error = None if streaming.cancelled() else streaming.exception()
        if error is not None and not isinstance(error, OSError):  # OSError: the client left
            raise error


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
