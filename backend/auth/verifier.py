"""Bearer token verification, the same for every key source (JWKS, shared secret, dev key)."""

import hashlib
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

import jwt
from cachetools import TLRUCache
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    ValidationError,
    field_validator,
)

from backend.auth.keys import VerificationKey
from backend.errors import ProblemError, Unauthorized
from backend.text import StorableText

logger = logging.getLogger(__name__)

# Printable, no whitespace: a user id ends up in URLs, logs and a text primary key.
SUBJECT_PATTERN = r"^[\x21-\x7e]{1,255}$"
MAX_IMAGE_LENGTH = 4000


class InvalidToken(Unauthorized):
    """Any token that does not verify; the detail never says which check failed."""

    def __init__(self) -> None:
        super().__init__()


class MissingCredentials(ProblemError):
    status, slug = 401, "missing-credentials"

    def __init__(self) -> None:
        super().__init__(
            "This endpoint requires an 'Authorization: Bearer <token>' header.",
            headers={"WWW-Authenticate": "Bearer"},
        )


Timestamp = StrictInt | StrictFloat


class TokenClaims(BaseModel):
    """The claims this service uses; Better Auth puts the user row's fields in its tokens.

    Strict: a signed token is still input. A time that is not a number, a `sub` that is not a
    short printable string, an `emailVerified` that is not a boolean, or text the database
    cannot store (NUL, lone surrogates) make the token invalid (401), not a 500 later."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, strict=True)

    sub: str = Field(pattern=SUBJECT_PATTERN)
    exp: Timestamp
    nbf: Timestamp | None = None
    iat: Timestamp | None = None
    email: StorableText | None = Field(default=None, max_length=320)
    name: StorableText | None = Field(default=None, max_length=1000)
    image: StorableText | None = None
    email_verified: bool = Field(default=False, alias="emailVerified")

    @field_validator("image")
    @classmethod
    def _drop_oversized_image(cls, image: str | None) -> str | None:
        # A data-URL avatar is no reason to refuse a valid token: store no image instead.
        return image if image is None or len(image) <= MAX_IMAGE_LENGTH else None


class KeySource(Protocol):
    async def keys_for(self, kid: str | None, alg: str) -> list[VerificationKey]: ...


class StaticKeys:
    """A fixed key set: the shared secret, or the development key."""

    def __init__(self, *keys: VerificationKey) -> None:
        self._keys = keys

    async def keys_for(self, kid: str | None, alg: str) -> list[VerificationKey]:
        return [key for key in self._keys if key.accepts(kid, alg)]


class VerifiedTokens:
    """Tokens that passed verification, until they expire: a client sends the same token for
    many requests, and checking its signature again each time is the costliest part of auth.

    Keyed by the token's SHA-256, bounded (least recently used goes first), per process. Only
    successes are cached; an entry lapses when its `exp` passes.
    """

    def __init__(self, max_size: int = 10_000, clock: Callable[[], float] = time.time) -> None:
        self._entries: TLRUCache[bytes, TokenClaims] = TLRUCache(
            max_size, ttu=lambda _key, claims, _now: claims.exp, timer=clock
        )

    @staticmethod
    def _key(token: str) -> bytes:
        return hashlib.sha256(token.encode()).digest()

    def get(self, token: str) -> TokenClaims | None:
        return self._entries.get(self._key(token))

    def add(self, token: str, claims: TokenClaims) -> None:
        self._entries[self._key(token)] = claims


class TokenVerifier:
    def __init__(
        self,
        keys: KeySource,
        *,
        issuer: str | None = None,
        audience: str | None = None,
        leeway: float = 30.0,
        cache: VerifiedTokens | None = None,
    ) -> None:
        self.keys = keys
        self.cache = cache if cache is not None else VerifiedTokens()
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway
        self._options: Any = {
            "require": ["exp", "sub"],
            # Better Auth always sets `aud`; without a configured audience there is nothing
            # to compare it with (PyJWT would otherwise reject every such token).
            "verify_aud": audience is not None,
        }

    async def verify(self, token: str) -> TokenClaims:
        claims = self.cache.get(token)
        if claims is None:
            claims = await self._verify(token)
            self.cache.add(token, claims)
        return claims

    async def _verify(self, token: str) -> TokenClaims:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise InvalidToken() from None
        alg, kid = header.get("alg"), header.get("kid")
        if not isinstance(alg, str) or not (kid is None or isinstance(kid, str)):
            raise InvalidToken()
        for key in await self.keys.keys_for(kid, alg):
            try:
                payload = jwt.decode(
                    token,
                    key.key,
                    algorithms=[alg],  # already checked against what the key allows
                    issuer=self._issuer,
                    audience=self._audience,
                    leeway=self._leeway,
                    options=self._options,
                )
            except jwt.InvalidSignatureError:
                continue  # a kid-less token: try the next key of the right type
            # PyJWT converts exp/nbf/iat with int() and lets a TypeError (a list) or an
            # OverflowError (1e400) escape: a signed token with such claims is invalid too.
            except (jwt.InvalidTokenError, TypeError, ValueError, OverflowError) as exc:
                logger.info("token rejected: %s", type(exc).__name__)
                raise InvalidToken() from None
            try:
                return TokenClaims.model_validate(payload)
            except ValidationError:
                raise InvalidToken() from None
        raise InvalidToken()
