"""A shutdown that drops nothing: on SIGTERM the API first drains, then stops.

1. At once: `/readyz` answers 503, so a load balancer stops routing new requests here.
2. For SHUTDOWN_DRAIN_SECONDS (0 in development, 5 in production) every request is still
   served as usual: whatever the balancer sent before it noticed gets an answer.
3. Then uvicorn's own graceful shutdown: it stops accepting connections and finishes every
   request it has received (for up to `todo-api serve`'s 10 s) before the process exits.

Open event streams (GET /events) end when the drain begins, each with a `retry:` hint: a
stream never ends by itself, and uvicorn would otherwise wait for it until its timeout.

uvicorn installs its SIGTERM handler before the application starts; the lifespan puts this
one in front of it and hands the signal on once the drain is over (a second SIGTERM hands it
on at once). SIGINT (Ctrl-C) is handed to uvicorn at once, after ending the streams.
"""

import asyncio
import logging
import signal
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from types import FrameType

logger = logging.getLogger(__name__)

Handler = Callable[[int, FrameType | None], object] | int | signal.Handlers | None


class Drain:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.draining = False
        self.stopping: asyncio.Event = asyncio.Event()  # set when the drain begins

    def begin(self) -> None:
        self.draining = True
        self.stopping.set()


def _hand_on(handler: Handler, signum: int, frame: FrameType | None) -> None:
    if callable(handler):
        handler(signum, frame)
    else:  # nobody else listens (not under uvicorn): end the process the default way
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)


@asynccontextmanager
async def draining_on_sigterm(drain: Drain) -> AsyncIterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield  # signals reach the main thread only (an app started by tests in another)
        return
    loop = asyncio.get_running_loop()
    previous: Handler = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        if drain.draining or drain.seconds <= 0:
            drain.begin()
            _hand_on(previous, signum, frame)
            return
        logger.info("SIGTERM: draining for %g s (readiness is now 503)", drain.seconds)
        drain.begin()
        loop.call_later(drain.seconds, _hand_on, previous, signum, frame)

    previous_sigint: Handler = signal.getsignal(signal.SIGINT)

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        drain.begin()
        _hand_on(previous_sigint, signum, frame)

    signal.signal(signal.SIGTERM, on_sigterm)
    signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_sigint)
