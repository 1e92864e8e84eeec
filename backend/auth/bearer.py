"""The `Authorization: Bearer <token>` header."""

from starlette.requests import HTTPConnection

from backend.auth.verifier import InvalidToken, MissingCredentials


def bearer_token(connection: HTTPConnection) -> str:
    """Parsed here rather than by FastAPI's HTTPBearer, which cannot tell a malformed header
    from a missing one and costs a dependency per request; the OpenAPI document declares the
    scheme (backend.openapi)."""
    header = connection.headers.get("authorization")
    if header is None:
        raise MissingCredentials()
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise InvalidToken()
    return token
