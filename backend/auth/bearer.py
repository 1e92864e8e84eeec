"""The `Authorization: Bearer <token>` header."""

from starlette.requests import HTTPConnection

from backend.auth.verifier import InvalidToken, MissingCredentials

# Real JWTs are well under 2 KiB. A larger "token" is refused before any parsing or
# signature check: verifying an attacker's megabytes would stall the event loop.
MAX_TOKEN_BYTES = 8192


def bearer_token(connection: HTTPConnection) -> str:
    """Parsed here rather than by FastAPI's HTTPBearer, which cannot tell a malformed header
    from a missing one and costs a dependency per request; the OpenAPI document declares the
    scheme (backend.openapi)."""
    header = connection.headers.get("authorization")
    if header is None:
        raise MissingCredentials()
    if len(header) > MAX_TOKEN_BYTES + len("Bearer "):
        raise InvalidToken()
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise InvalidToken()
    return token
