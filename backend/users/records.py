"""What the user layers pass each other: typed, immutable records (msgspec Structs, like
backend.todos.records)."""

from datetime import datetime
from typing import Any, Self

from msgspec import Struct

# RFC 2606 reserves `.invalid`: such an address can never reach anyone.
PLACEHOLDER_EMAIL_DOMAIN = "no-email.invalid"


class UserProfile(Struct, frozen=True):
    """What a token says about its user; provisioning writes it to the `user` row."""

    name: str
    email: str
    email_verified: bool
    image: str | None


class UserRecord(Struct, frozen=True):
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


USER_FIELDS: tuple[str, ...] = UserRecord.__struct_fields__
