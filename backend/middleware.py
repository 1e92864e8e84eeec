"""Pure ASGI middleware (no BaseHTTPMiddleware: it would buffer and copy every body).

- RequestMiddleware: the request id (a sane `X-Request-ID` honoured, else one made), echoed on
  every response and put in a context variable for the logs; the access log line and the
  metrics of each request. One layer for all three: each layer costs every request a call.
- BodyGuardMiddleware: bodies must be JSON (415 otherwise) and at most `max_bytes` (413),
  checked against Content-Length up front and counted while reading (chunked bodies).
"""

import itertools
import os
import re
import secrets
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.errors import internal_error, problem_response
from backend.observability import RequestRecorder, request_id_var

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_BODY_METHODS = {"POST", "PUT", "PATCH"}


# Generated ids: 32 hex digits, this process's random prefix and a counter. Unique across
# processes (the prefix, drawn again in a forked child) and requests (the counter) without a
# call to the OS's random source on every request.
_process_prefix = secrets.token_hex(8)
_request_numbers = itertools.count(1)


def _draw_prefix() -> None:
    global _process_prefix
    _process_prefix = secrets.token_hex(8)


os.register_at_fork(after_in_child=_draw_prefix)


def _new_request_id() -> str:
    return f"{_process_prefix}{next(_request_numbers):016x}"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


class RequestMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.recorder = RequestRecorder()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        given = _header(scope, b"x-request-id")
        request_id = given if given and _SAFE_REQUEST_ID.match(given) else _new_request_id()
        id_header = (b"x-request-id", request_id.encode())
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        token = request_id_var.set(request_id)
        status = 0  # no response started yet

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append(id_header)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            # An exception no handler claimed would reach Starlette's ServerErrorMiddleware,
            # which sits outside every middleware of ours: its 500 carried no X-Request-ID and
            # its log line no request id. Answer here instead, where both are known.
            if status:
                raise
            await internal_error(exc)(scope, receive, send_with_id)
        finally:
            route = getattr(scope.get("route"), "path_format", None) or "unmatched"
            user = state.get("user")
            self.recorder.record(
                scope["method"],
                route,
                status or 500,
                time.perf_counter() - started,
                user.id if user is not None else None,
                request_id,
            )
            request_id_var.reset(token)


def _is_json(content_type: str | None) -> bool:
    if content_type is None:
        return False
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


class BodyGuardMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        length = _header(scope, b"content-length")
        chunked = "chunked" in (_header(scope, b"transfer-encoding") or "").lower()
        has_body = chunked or (length is not None and length.strip() != "0")
        if has_body and not _is_json(_header(scope, b"content-type")):
            response = problem_response(415, detail="Send the body as application/json.")
            await response(scope, receive, send)
            return
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self._too_large()(scope, receive, send)
            return

        # Read the body here, before the app sees any of it. Raising from inside the app's own
        # body read does not work: FastAPI turns any error there into a 400 "error parsing the
        # body", so a chunked body over the limit (no Content-Length to check up front) got 400,
        # not 413. The app reads the whole body anyway, so holding it costs nothing extra.
        chunks: list[bytes] = []
        received = 0
        more_body = True
        while more_body:
            message = await receive()
            if message["type"] != "http.request":  # http.disconnect: nobody left to answer
                return
            chunk: bytes = message.get("body", b"")
            received += len(chunk)
            if received > self.max_bytes:
                await self._too_large()(scope, receive, send)
                return
            chunks.append(chunk)
            more_body = message.get("more_body", False)
        body = b"".join(chunks)
        body_sent = False

        async def replay_receive() -> Message:
            nonlocal body_sent
            if not body_sent:
                body_sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for http.disconnect

        await self.app(scope, replay_receive, send)

    @property
    def _detail(self) -> str:
        return f"The body exceeds {self.max_bytes} bytes."

    def _too_large(self) -> ASGIApp:
        return problem_response(413, slug="payload-too-large", detail=self._detail)
