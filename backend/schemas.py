"""What every input schema shares: strict, bounded, storable.

- `InputModel`: unknown fields are rejected (never silently applied), and a body with
  thousands of them is refused after the first few instead of producing (and paying for) an
  error per key.
- `UtcDatetime`: an ISO-8601 string with an offset, normalised to UTC; never a Unix number
  (`0` is not a date), never naive, never an instant PostgreSQL would store as ±infinity.
- `StorableText` (backend.text): no NUL, no lone surrogates.
"""

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    model_validator,
)

# At most this many unknown fields are named in a 422; the rest are not even looked at.
MAX_REPORTED_UNKNOWN_FIELDS = 20

_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def _iso_string(value: object) -> object:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _ISO_DATETIME.match(value):
        raise ValueError("must be an ISO-8601 date-time string with an offset")
    return value


def _in_utc(value: datetime) -> datetime:
    # Normalised here, where a failure is still a 422: an offset that pushes the instant past
    # datetime's range (9999-12-31T23:59:59-01:00) failed in the driver, as a 500.
    try:
        moment = value.astimezone(UTC)
    except OverflowError:
        raise ValueError("must be an instant between years 1 and 9999 in UTC") from None
    # asyncpg sends the very first and last instants as -infinity and infinity, which come
    # back without an offset and cannot be paged past.
    if moment.replace(tzinfo=None) in (datetime.min, datetime.max):
        raise ValueError("must be an instant after year 1 began and before year 9999 ended")
    return moment


UtcDatetime = Annotated[AwareDatetime, BeforeValidator(_iso_string), AfterValidator(_in_utc)]


class InputModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _few_unknown_fields(cls, data: Any) -> Any:
        if not isinstance(data, dict) or len(data) <= len(cls.model_fields):
            return data
        unknown = [key for key in data if key not in cls.model_fields]
        if len(unknown) <= MAX_REPORTED_UNKNOWN_FIELDS:
            return data
        kept = set(unknown[:MAX_REPORTED_UNKNOWN_FIELDS])
        return {k: v for k, v in data.items() if k in cls.model_fields or k in kept}
