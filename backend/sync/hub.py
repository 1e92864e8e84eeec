"""The process's event hub: which event streams are open here, and what wakes them.

A stream sleeps until its user's log may have moved, then reads the log from its position
(backend.sync.streams). Three things wake it:

- a write committed by this process (`changed`, which the services call) — at once;
- with a direct database URL, a notification from another instance: after its commits each
  instance sends `NOTIFY todo_changes` on its one LISTEN connection (to the direct host: a
  transaction-mode pooler cannot carry LISTEN), naming the users (as short hashes) whose
  logs moved, and every instance wakes those users' streams;
- every EVENTS_POLL_SECONDS, one query for the heads of the logs of every user with a
  stream here: any stream behind its user's head wakes. Without a direct URL this is how
  changes from other instances arrive; with one, it is the safety net for notifications that
  never came (an instance that died between its commit and its NOTIFY, a listener that was
  reconnecting). The same query says whose reminders are due; this process then fires
  them, claiming each in the database, so each fires once however many instances try.

Writers do not NOTIFY inside their own transactions on purpose: PostgreSQL serializes the
commits of every notifying transaction in a database under one lock held through the
commit's WAL flush (measured here with pgbench, 32 clients, one-statement writes: 18,400
transactions/s without a NOTIFY, 4,800 with one). One NOTIFY per batch from each instance,
outside any request, costs the request path nothing.
"""

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from backend.db import Database
from backend.db_url import parse_database_url
from backend.errors import is_outage
from backend.settings import Settings
from backend.sync.errors import TooManyStreams
from backend.sync.records import Position
from backend.sync.repository import watch
from backend.sync.service import SyncService

logger = logging.getLogger(__name__)

CHANNEL = "todo_changes"
MAX_PAYLOAD = 7_000  # bytes per NOTIFY (PostgreSQL's limit is 8,000)
WATCH_CHUNK = 1_000  # users per head query
LISTENER_PING_SECONDS = 10.0  # a LISTEN connection that died silently is found this fast
MAX_RECONNECT_DELAY = 10.0


def user_hash(user_id: str) -> str:
    """What a notification names a user by: not the id itself (any database role may LISTEN),
    and short. A collision only wakes a stream for nothing."""
    return hashlib.blake2b(user_id.encode(), digest_size=6).hexdigest()


class Subscription:
    """One open stream: its user, how far it has read, and the event that wakes it."""

    __slots__ = ("position", "user_id", "wake")

    def __init__(self, user_id: str) -> None:
        self.user_id = user_id
        self.position: Position | None = None  # set once the stream knows where it starts
        self.wake = asyncio.Event()


class EventHub:
    def __init__(
        self, database: Database, settings: Settings, direct_url: str | None = None
    ) -> None:
        self._database = database
        self._settings = settings
        self._direct_url = direct_url
        self.max_streams_per_user = settings.events_max_streams_per_user
        self._streams: dict[str, set[Subscription]] = {}
        self._users_by_hash: dict[str, str] = {}
        self._unsent: set[str] = set()  # hashes of users to NOTIFY about
        self._send = asyncio.Event()
        self._listener_pid: int | None = None
        self.closing = False

    def subscribe(self, user_id: str) -> Subscription:
        """A new stream of `user_id`'s; 429 if they have as many open here as allowed."""
        streams = self._streams.setdefault(user_id, set())
        if len(streams) >= self.max_streams_per_user:
            if not streams:
                del self._streams[user_id]
            raise TooManyStreams(self.max_streams_per_user, retry_after=5)
        subscription = Subscription(user_id)
        streams.add(subscription)
        self._users_by_hash[user_hash(user_id)] = user_id
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        streams = self._streams.get(subscription.user_id)
        if streams is None:
            return
        streams.discard(subscription)
        if not streams:
            del self._streams[subscription.user_id]
            self._users_by_hash.pop(user_hash(subscription.user_id), None)

    def changed(self, user_id: str) -> None:
        """A write of `user_id`'s committed in this process (see backend.sync.announce)."""
        self._wake(user_id)
        if self._direct_url is not None:
            self._unsent.add(user_hash(user_id))
            self._send.set()

    def _wake(self, user_id: str) -> None:
        for subscription in self._streams.get(user_id, ()):
            subscription.wake.set()

    def _wake_all(self) -> None:
        for streams in self._streams.values():
            for subscription in streams:
                subscription.wake.set()

    def close_streams(self) -> None:
        """End every stream (shutdown): each sends its `retry:` hint and closes."""
        self.closing = True
        self._wake_all()

    @asynccontextmanager
    async def running(self, stopping: asyncio.Event) -> AsyncIterator["EventHub"]:
        """The hub's background work, from start-up to shutdown; streams end when
        `stopping` is set (SIGTERM) or, at the latest, when this block exits."""
        tasks = [
            asyncio.create_task(self._poll_forever(), name="events-poll"),
            asyncio.create_task(self._close_on(stopping), name="events-stop"),
        ]
        if self._direct_url is not None:
            tasks.append(asyncio.create_task(self._listen_forever(), name="events-listen"))
        try:
            yield self
        finally:
            self.close_streams()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _close_on(self, stopping: asyncio.Event) -> None:
        await stopping.wait()
        self.close_streams()

    # Polling: heads and due reminders of every user with a stream here.

    async def _poll_forever(self) -> None:
        while True:
            await asyncio.sleep(self._settings.events_poll_seconds)
            if not self._streams:
                continue
            try:
                await self.poll()
            except Exception as exc:
                if is_outage(exc):
                    logger.warning("events poll skipped: database unavailable (%s)", exc)
                else:
                    logger.exception("events poll failed")

    async def poll(self) -> None:
        """Wake every stream behind its user's head; fire the reminders that are due."""
        users = list(self._streams)
        due = []
        for start in range(0, len(users), WATCH_CHUNK):
            async with self._database.connection() as connection:
                heads = await watch(connection, users[start : start + WATCH_CHUNK])
            for user_id, head, reminders_due in heads:
                for subscription in self._streams.get(user_id, ()):
                    position = subscription.position
                    if position is not None and head > position.seq:
                        subscription.wake.set()
                if reminders_due:
                    due.append(user_id)
        for user_id in due:
            if await SyncService(self._database, user_id).fire_reminders():
                self.changed(user_id)

    # LISTEN/NOTIFY on the direct connection.

    async def _listen_forever(self) -> None:
        assert self._direct_url is not None
        arguments = _connect_arguments(self._direct_url, self._settings)
        delay = 0.5
        while True:
            try:
                connection: asyncpg.Connection[Any] = await asyncpg.connect(**arguments)
            except Exception as exc:
                logger.warning("events: cannot open the LISTEN connection (%s)", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RECONNECT_DELAY)
                continue
            delay = 0.5
            try:
                await self._listen_on(connection)
            except Exception as exc:
                if is_outage(exc) or isinstance(exc, asyncpg.InterfaceError):
                    logger.warning("events: LISTEN connection lost (%s); reconnecting", exc)
                else:
                    logger.exception("events: LISTEN connection failed; reconnecting")
            finally:
                self._listener_pid = None
                with contextlib.suppress(Exception):
                    connection.terminate()

    async def _listen_on(self, connection: "asyncpg.Connection[Any]") -> None:
        lost = asyncio.Event()

        def on_termination(_: object) -> None:
            lost.set()
            self._send.set()  # stop waiting: reconnect

        connection.add_termination_listener(on_termination)
        await connection.add_listener(CHANNEL, self._on_notification)
        self._listener_pid = connection.get_server_pid()
        logger.info("events: listening for changes of other instances")
        self._wake_all()  # whatever was announced while this process was not listening
        ping_timeout = min(2.0, self._settings.db_statement_timeout)
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(LISTENER_PING_SECONDS):
                    await self._send.wait()
            if lost.is_set() or connection.is_closed():
                raise asyncpg.InterfaceError("the LISTEN connection was closed")
            if not self._send.is_set():  # quiet for a while: is the connection still there?
                await connection.execute("SELECT 1", timeout=ping_timeout)
                continue
            self._send.clear()
            unsent, self._unsent = self._unsent, set()
            try:
                await connection.execute(
                    "SELECT pg_notify($1, payload) FROM unnest($2::text[]) AS payload",
                    CHANNEL,
                    _payloads(sorted(unsent)),
                    timeout=ping_timeout,
                )
            except BaseException:
                self._unsent |= unsent  # sent by the next connection
                raise

    def _on_notification(self, connection: object, pid: int, channel: str, payload: object) -> None:
        if pid == self._listener_pid:
            return  # our own: this process woke its streams when it committed
        for hashed in str(payload).split():
            user_id = self._users_by_hash.get(hashed)
            if user_id is not None:
                self._wake(user_id)


def _payloads(hashes: list[str]) -> list[str]:
    """`hashes`, space-separated, in as few payloads as fit."""
    payloads: list[str] = []
    current: list[str] = []
    size = 0
    for hashed in hashes:
        if current and size + len(hashed) + 1 > MAX_PAYLOAD:
            payloads.append(" ".join(current))
            current, size = [], 0
        current.append(hashed)
        size += len(hashed) + 1
    if current:
        payloads.append(" ".join(current))
    return payloads


def _connect_arguments(url: str, settings: Settings) -> dict[str, Any]:
    return {
        "timeout": settings.db_connect_timeout,
        **parse_database_url(url).asyncpg_arguments(),
        "command_timeout": settings.db_statement_timeout,
        "statement_cache_size": 0,  # a handful of statements, each rarely
    }
