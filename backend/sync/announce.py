"""What write use cases call once their change has committed: `announce(user_id)`.

The running API passes its EventHub's `changed` (backend.sync.hub), which wakes that user's
event streams in this process and tells the other instances. Services never depend on the hub
itself, only on this callable; without one (scripts, tests of a service alone) nothing is
announced, and the change still reaches every stream through the periodic check.
"""

from collections.abc import Callable

type Announce = Callable[[str], None]


def unannounced(user_id: str) -> None:
    """Announce nothing."""
