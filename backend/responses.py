"""JSON responses encoded once, straight from records.

Endpoints return records (msgspec Structs) rather than building a pydantic model only to
dump it; the route's `response_model` still documents the shape in the OpenAPI document, and
the schema-driven tests (tests/test_openapi.py) check that what is sent conforms to it.
"""

import msgspec
from starlette.responses import Response

_encoder = msgspec.json.Encoder()


def json_response(
    body: object, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(_encoder.encode(body), status_code, headers, media_type="application/json")
