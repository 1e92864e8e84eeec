"""Strong ETags from the row version, and If-Match parsing (RFC 9110 §13.1.1)."""

import re
from typing import Any

from backend.todos.records import ExpectedVersions

ETAG_HEADER: dict[str, Any] = {
    "ETag": {
        "description": "Strong validator of this version.",
        "required": True,
        "schema": {"type": "string"},
    }
}
_STRONG_TAG = re.compile(r'"(\d{1,10})"')
# The version column is a PostgreSQL integer: a larger number names no version, and binding
# it would fail in the driver (a 500) instead of simply not matching (412).
_MAX_VERSION = 2**31 - 1
# No todo has version 0: a header naming no usable tag can never match.
_MATCHES_NOTHING = frozenset({0})


def etag_for(version: int) -> str:
    return f'"{version}"'


def parse_if_match(header: str | None) -> ExpectedVersions:
    """None when absent; the empty set for `*` (any current version); otherwise the versions
    named by strong tags. Weak tags (W/"1") never match under the strong comparison If-Match
    requires."""
    if header is None:
        return None
    if header.strip() == "*":
        return frozenset()
    tags = _STRONG_TAG.findall(re.sub(r'W/"[^"]*"', "", header))
    versions = {int(tag) for tag in tags if int(tag) <= _MAX_VERSION}
    return frozenset(versions) or _MATCHES_NOTHING
