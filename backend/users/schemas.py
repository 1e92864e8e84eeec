"""API-facing shapes of a user."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from backend.users.records import PLACEHOLDER_EMAIL_DOMAIN


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
