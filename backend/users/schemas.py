"""API-facing shapes of a user."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from backend.auth.verifier import TokenClaims

# RFC 2606 reserves `.invalid`: such an address can never reach anyone.
PLACEHOLDER_EMAIL_DOMAIN = "no-email.invalid"


class UserProfile(BaseModel):
    """What a token says about its user; provisioning writes it to the `user` row."""

    model_config = ConfigDict(frozen=True)

    name: str
    email: str
    email_verified: bool
    image: str | None

    @classmethod
    def from_claims(cls, claims: TokenClaims) -> "UserProfile":
        return cls(
            name=claims.name or "",
            email=claims.email or f"{claims.sub}@{PLACEHOLDER_EMAIL_DOMAIN}",
            email_verified=claims.email_verified,
            image=claims.image,
        )


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    email: str = Field(
        description=f"`<id>@{PLACEHOLDER_EMAIL_DOMAIN}` when the token carried no e-mail."
    )
    email_verified: bool
    image: str | None
    created_at: datetime
    updated_at: datetime
