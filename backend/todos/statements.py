"""The SQL of every todo statement, generated from the `todo` table and compiled once.

Fixed statements are compiled at import. Those whose shape depends on the request (which
filters a listing has, which fields a change sets) are compiled on first use of each shape
and kept: there are few shapes, and each keeps exact SQL (and so its own query plan) instead
of one statement full of `$n IS NULL OR ...` that the planner cannot use indexes for.

Every statement is scoped by `user_id = $user_id`; TodoRepository supplies it.
"""

from functools import cache

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Integer,
    and_,
    any_,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    literal_column,
    select,
    update,
)

from backend.sql import Statement
from backend.todos.models import TODOS
from backend.todos.pagination import SortOrder
from backend.todos.records import COLUMNS

C = TODOS.c
RETURNED = [C[name] for name in COLUMNS]
ONE: ColumnElement[int] = literal_column("1", Integer)


def _mine(*conditions: ColumnElement[bool]) -> ColumnElement[bool]:
    return and_(C.user_id == bindparam("user_id"), *conditions)


def _one(*, guarded: bool = False) -> ColumnElement[bool]:
    """The todo `todo_id` of the user; with `guarded`, only at one of the `versions`."""
    conditions = [C.id == bindparam("todo_id")]
    if guarded:
        conditions.append(C.version == any_(bindparam("versions", type_=ARRAY(Integer))))
    return _mine(*conditions)


GET = Statement.compile(select(*RETURNED).where(_one()))
EXISTS = Statement.compile(select(exists().where(_one())))
INSERT = Statement.compile(
    insert(TODOS)
    .values(
        id=bindparam("id"),
        user_id=bindparam("user_id"),
        title=bindparam("title"),
        description=bindparam("description"),
        completed=bindparam("completed"),
        completed_at=case((bindparam("completed"), func.now())),
        priority=bindparam("priority"),
        due_at=bindparam("due_at"),
    )
    .returning(*RETURNED)
)
CLEAR_COMPLETED = Statement.compile(delete(TODOS).where(_mine(C.completed)))
STATS = Statement.compile(
    select(
        func.count(),
        func.count().filter(C.completed),
        func.count().filter(~C.completed, C.due_at < func.now()),
    ).where(_mine())
)


@cache
def delete_one(*, guarded: bool) -> Statement:
    return Statement.compile(delete(TODOS).where(_one(guarded=guarded)).returning(C.id))


@cache
def update_one(fields: frozenset[str], *, guarded: bool) -> Statement:
    """UPDATE of `fields` (each bound under its own name) that bumps the version; with
    `guarded`, only if the version is one of `versions` (If-Match)."""
    values: dict[str, object] = {name: bindparam(name, type_=C[name].type) for name in fields}
    values["version"] = C.version + ONE
    values["updated_at"] = func.now()
    if "completed" in fields:
        # Completing keeps the first completion time; reopening clears it.
        values["completed_at"] = case(
            (bindparam("completed"), func.coalesce(C.completed_at, func.now()))
        )
    return Statement.compile(
        update(TODOS).where(_one(guarded=guarded)).values(values).returning(*RETURNED)
    )


def _condition(name: str) -> ColumnElement[bool]:
    match name:
        case "completed":
            return C.completed == bindparam("completed")
        case "priority":
            return C.priority == bindparam("priority")
        case "text":  # the bound value is an ILIKE pattern, wildcards escaped (`\`)
            pattern = bindparam("text", type_=C.title.type)
            return C.title.ilike(pattern) | C.description.ilike(pattern)
        case "due_after":
            return C.due_at >= bindparam("due_after")
        case "due_before":
            return C.due_at < bindparam("due_before")
    raise ValueError(f"no such filter: {name}")


@cache
def page(filters: frozenset[str], sort: str, after: str | None) -> Statement:
    """One page of the user's todos, `limit` rows, matching `filters` (the names of
    TodoFilter's set fields), in `sort` order, after a position (`after`: None on the first
    page, "key" after a row, "null" after a row whose sort key is null)."""
    order = SortOrder.parse(sort)
    conditions = [_condition(name) for name in sorted(filters)]
    if after is not None:
        conditions.append(order.after(null_key=after == "null"))
    statement = (
        select(*RETURNED)
        .where(_mine(*conditions))
        .order_by(*order.order_by())
        .limit(bindparam("limit"))
    )
    return Statement.compile(statement)
