"""What can go wrong with a todo, as problems a client is told about."""

from backend.errors import NotFound, PreconditionFailed, UnprocessableContent


class TodoNotFound(NotFound):
    """Missing, or someone else's: the two are indistinguishable by design."""

    def __init__(self) -> None:
        super().__init__("No todo with this id.")


class VersionMismatch(PreconditionFailed):
    def __init__(self) -> None:
        super().__init__("The todo has changed since the ETag in If-Match was issued.")


class RecurrenceWithoutDueDate(UnprocessableContent):
    def __init__(self) -> None:
        super().__init__("A recurring todo needs a due_at: occurrences follow from it.")


class ReminderAfterDueDate(UnprocessableContent):
    def __init__(self) -> None:
        super().__init__("remind_at must not be after due_at.")


# The CHECK constraints valid-looking input can break, and what each means to a client.
VIOLATED_CHECKS: dict[str, type[UnprocessableContent]] = {
    "todo_recurrence_due_check": RecurrenceWithoutDueDate,
    "todo_remind_before_due_check": ReminderAfterDueDate,
}
