"""uvicorn's httptools protocol with a bound on request headers.

httptools keeps a request's headers in memory until they are complete, however long they get:
a client that sends megabytes of header and never finishes holds that memory (about 200 MB
for a few such clients, measured). This protocol counts the bytes of each request's head as
they arrive and answers 431 as soon as they pass the bound, before buffering any more.
`todo-api serve` uses it; uvicorn's h11 protocol has a bound of its own
(`h11_max_incomplete_event_size`), httptools has none.
"""

import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from backend.problems import type_uri
from backend.settings import get_settings

_HEAD_END = b"\r\n\r\n"


def _too_large_response() -> bytes:
    body = json.dumps(
        {
            "type": type_uri("request-header-fields-too-large"),
            "title": "Request Header Fields Too Large",
            "status": 431,
            "detail": "The request's headers are too large.",
        }
    ).encode()
    head = (
        "HTTP/1.1 431 Request Header Fields Too Large\r\n"
        "content-type: application/problem+json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode() + body


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """Named by import string in `todo-api serve` (uvicorn's workers import it): the bound
    comes from the settings, HTTP_MAX_HEADER_BYTES."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_header_bytes = get_settings().http_max_header_bytes
        self._head_bytes = 0  # of the request whose head is arriving; -1: head complete

    def data_received(self, data: bytes) -> None:
        if self._head_bytes >= 0:
            end = data.find(_HEAD_END)
            self._head_bytes += len(data) if end < 0 else end
            if self._head_bytes > self.max_header_bytes:
                self.transport.write(_too_large_response())
                self.transport.close()
                return
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._head_bytes = -1
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._head_bytes = 0  # the next request on this connection starts its head
        super().on_message_complete()
