"""What can go wrong with a tag, as problems a client is told about."""

from backend.errors import Conflict, NotFound
from backend.tags.models import MAX_TAGS_PER_USER


class TagNotFound(NotFound):
    """Missing, or someone else's: the two are indistinguishable by design."""

    def __init__(self) -> None:
        super().__init__("No tag with this id.")


class TagNameTaken(Conflict):
    def __init__(self) -> None:
        super().__init__("You already have a tag with this name (names ignore case).")


class TagLimitReached(Conflict):
    def __init__(self) -> None:
        super().__init__(f"A user has at most {MAX_TAGS_PER_USER} tags; delete some first.")


class TagDeletedMeanwhile(Conflict):
    def __init__(self) -> None:
        super().__init__("One of the tags was deleted while this request ran; try again.")
