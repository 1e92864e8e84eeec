"""`CurrentUser`: the authenticated caller, provisioned in the `user` table on first sight."""

from collections import OrderedDict
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from backend.auth.verifier import InvalidToken, MissingCredentials, TokenVerifier
from backend.db import Database
from backend.users.repository import UserRepository
from backend.users.schemas import UserProfile


class KnownUsers:
    """Users whose row already matches their token's profile, so later requests skip the
    upsert. Per process and bounded; losing it costs one idempotent upsert."""

    def __init__(self, max_size: int = 10_000) -> None:
        self._profiles: OrderedDict[str, UserProfile] = OrderedDict()
        self._max_size = max_size

    def is_current(self, user_id: str, profile: UserProfile) -> bool:
        if self._profiles.get(user_id) != profile:
            return False
        self._profiles.move_to_end(user_id)
        return True

    def remember(self, user_id: str, profile: UserProfile) -> None:
        self._profiles[user_id] = profile
        self._profiles.move_to_end(user_id)
        if len(self._profiles) > self._max_size:
            self._profiles.popitem(last=False)

    def forget(self, user_id: str) -> None:
        self._profiles.pop(user_id, None)


@dataclass(frozen=True)
class AuthenticatedUser:
    id: str


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization")
    if header is None:
        raise MissingCredentials()
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise InvalidToken()
    return token


async def current_user(request: Request) -> AuthenticatedUser:
    """The header is parsed here rather than by FastAPI's HTTPBearer, which cannot tell a
    malformed header from a missing one and costs a dependency per request; the OpenAPI
    document declares the scheme (backend.openapi)."""
    database: Database = request.app.state.db
    verifier: TokenVerifier = request.app.state.verifier
    known_users: KnownUsers = request.app.state.known_users
    claims = await verifier.verify(bearer_token(request))
    profile = UserProfile.from_claims(claims)
    if not known_users.is_current(claims.sub, profile):
        # Its own short transaction, committed before the request goes on: only a committed
        # row may count as known.
        async with database.transaction() as connection:
            await UserRepository(connection, claims.sub).provision(profile)
        known_users.remember(claims.sub, profile)
    request.state.user_id = claims.sub  # for the request log
    return AuthenticatedUser(id=claims.sub)


CurrentUser = Annotated[AuthenticatedUser, Depends(current_user)]
