"""`CurrentUser`: the authenticated caller, provisioned in the `user` table on first sight.

Authentication (backend.auth) says who signed the token; this module turns its claims into a
user of this service. The arrow points one way: users depends on auth, never the reverse.
"""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from backend import tracing
from backend.auth.bearer import bearer_token
from backend.auth.verifier import TokenClaims, TokenVerifier
from backend.errors import problem_for
from backend.users.errors import UserGone
from backend.users.records import PLACEHOLDER_EMAIL_DOMAIN, UserProfile
from backend.users.service import UserService


@dataclass(frozen=True, slots=True)
class AuthenticatedUser:
    id: str
    token_expires_at: float


def profile_from(claims: TokenClaims) -> UserProfile:
    return UserProfile(
        name=claims.name or "",
        email=claims.email or f"{claims.sub}@{PLACEHOLDER_EMAIL_DOMAIN}",
        email_verified=claims.email_verified,
        image=claims.image,
    )


async def current_user(request: Request) -> AuthenticatedUser:
    state = request.app.state
    verifier: TokenVerifier = state.verifier
    users: UserService = state.users
    claims = await verifier.verify(bearer_token(request))
    user = AuthenticatedUser(id=claims.sub, token_expires_at=claims.exp)
    request.state.user = user  # for the request log, and for _on_user_gone
    if tracing.active:  # the request's span: enduser.id
        tracing.tag_user(user.id)
    await users.sign_in(user.id, profile_from(claims))
    return user


async def _on_user_gone(request: Request, exc: Exception) -> JSONResponse:
    """Wherever a request found its user deleted, this process refuses the user's tokens
    from now on (until they expire) instead of provisioning the user anew."""
    user: AuthenticatedUser | None = getattr(request.state, "user", None)
    if user is not None:
        users: UserService = request.app.state.users
        users.forget(user.id, refuse_until=user.token_expires_at)
    assert isinstance(exc, UserGone)
    return problem_for(exc)


def install_user_handlers(app: FastAPI) -> None:
    app.add_exception_handler(UserGone, _on_user_gone)


CurrentUser = Annotated[AuthenticatedUser, Depends(current_user)]
