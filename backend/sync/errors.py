"""The problems of the change feed and the event stream."""

from backend.errors import ProblemError, UnprocessableContent


class InvalidSyncToken(UnprocessableContent):
    def __init__(self) -> None:
        super().__init__("The sync token is malformed: pass back a `next` or event id as is.")


class ResyncRequired(ProblemError):
    status, slug = 410, "resync-required"

    def __init__(self) -> None:
        super().__init__(
            "This sync token can no longer be answered exactly (it is older than the change "
            "log keeps, or was not issued for you): sync again from the beginning."
        )


class TooManyStreams(ProblemError):
    status, slug = 429, "too-many-streams"

    def __init__(self, limit: int, retry_after: int) -> None:
        super().__init__(
            f"You have {limit} event streams open on this server already; close one first.",
            headers={"Retry-After": str(retry_after)},
        )
