"""Text the database can store: no NUL characters (PostgreSQL's text cannot hold them) and no
lone surrogates (not Unicode: no driver can encode them). Client input with either is a 4xx,
never a failure in the driver."""

from typing import Annotated

from pydantic import AfterValidator

# For OpenAPI documents (ECMA-262 syntax): what `storable` enforces that a pattern can say.
NO_NUL_PATTERN = r"^[^\u0000]*$"


def storable(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode()
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (no lone surrogates)") from None
    return value


StorableText = Annotated[str, AfterValidator(storable)]
