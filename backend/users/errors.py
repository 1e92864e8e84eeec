"""What can go wrong with a user, as problems a client is told about."""

from backend.errors import Conflict, Unauthorized


class UserGone(Unauthorized):
    """The token verifies, but its user was deleted after this process first saw it (by
    Better Auth, on a shared database): answered like any other unusable token."""

    def __init__(self) -> None:
        super().__init__()


class EmailTaken(Conflict):
    def __init__(self) -> None:
        super().__init__("The token's e-mail address belongs to another user.")
