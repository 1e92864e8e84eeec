"""What the user layers pass each other: typed, immutable records."""

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Self

# RFC 2606 reserves `.invalid`: such an address can never reach anyone.
PLACEHOLDER_EMAIL_DOMAIN = "no-email.invalid"


@dataclass(frozen=True, slots=True)
class UserProfile:
    """What a token says about its user; provisioning writes it to the `user` row."""

    name: str
    email: str
    email_verified: bool
    image: str | None


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: str
    name: str
    email: str
    email_verified: bool
    image: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> Self:
        return cls(*row)


USER_FIELDS = tuple(field.name for field in fields(UserRecord))
