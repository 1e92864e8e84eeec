"""Bearer token verification, the same for every key source (JWKS, shared secret, dev key)."""

import logging
from typing import Any, Protocol

import jwt
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from backend.auth.keys import VerificationKey
from backend.errors import ProblemError

logger = logging.getLogger(__name__)

# Printable, no whitespace: a user id ends up in URLs, logs and a text primary key.
SUBJECT_PATTERN = r"^[\x21-\x7e]{1,255}$"
MAX_IMAGE_LENGTH = 4000


class InvalidToken(ProblemError):
    """401 for any token that does not verify; the detail never says which check failed."""

    status, slug = 401, "invalid-token"

    def __init__(self) -> None:
        super().__init__(
            "The bearer token is invalid or expired.",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )


class MissingCredentials(ProblemError):
    status, slug = 401, "missing-credentials"

    def __init__(self) -> None:
        super().__init__(
            "This endpoint requires an 'Authorization: Bearer <token>' header.",
            headers={"WWW-Authenticate": "Bearer"},
        )


class TokenClaims(BaseModel):
    """The claims this service uses; Better Auth puts the user row's fields in its tokens."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    sub: str = Field(pattern=SUBJECT_PATTERN)
    exp: float
    email: str | None = Field(default=None, max_length=320)
    name: str | None = Field(default=None, max_length=1000)
    image: str | None = None
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


class TokenVerifier:
    def __init__(
        self,
        keys: KeySource,
        *,
        issuer: str | None = None,
        audience: str | None = None,
        leeway: float = 30.0,
    ) -> None:
        self.keys = keys
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
            except jwt.InvalidTokenError as exc:
                logger.info("token rejected: %s", type(exc).__name__)
                raise InvalidToken() from None
            try:
                return TokenClaims.model_validate(payload)
            except ValidationError:
                raise InvalidToken() from None
        raise InvalidToken()
