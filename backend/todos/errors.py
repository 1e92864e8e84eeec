"""What can go wrong with a todo, as problems a client is told about."""

from backend.errors import NotFound, PreconditionFailed


class TodoNotFound(NotFound):
    """Missing, or someone else's: the two are indistinguishable by design."""

    def __init__(self) -> None:
        super().__init__("No todo with this id.")


class VersionMismatch(PreconditionFailed):
    def __init__(self) -> None:
        super().__init__("The todo has changed since the ETag in If-Match was issued.")
