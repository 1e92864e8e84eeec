"""JSON responses serialised once, straight from records.

Endpoints return records (frozen dataclasses) rather than building a pydantic model only to
dump it; the route's `response_model` still documents the shape in the OpenAPI document, and
tests check that what is sent validates against it.
"""

from typing import Any

from pydantic import TypeAdapter
from starlette.responses import Response

_serializers: dict[type, TypeAdapter[Any]] = {}


def to_json(body: object) -> bytes:
    kind = type(body)
    serializer = _serializers.get(kind)
    if serializer is None:
        serializer = _serializers[kind] = TypeAdapter(kind)
    return serializer.dump_json(body)


def json_response(
    body: object, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(to_json(body), status_code, headers, media_type="application/json")
