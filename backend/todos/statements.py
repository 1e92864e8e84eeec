"""The SQL of every todo statement, generated from the `todo` table and compiled once.

Fixed statements are compiled at import. Those whose shape depends on the request (which
filters a listing has, which fields a change sets) are compiled on first use of each shape
and kept: there are few shapes, and each keeps exact SQL (and so its own query plan) instead
of one statement full of `$n IS NULL OR ...` that the planner cannot use indexes for.

Every statement is scoped by `user_id = $user_id`; TodoRepository supplies it.

A todo's `tags` (its tag names, sorted case-insensitively) are aggregated in the statement
that reads or writes the todo, so reading one todo or a page stays one round trip. A write
that sets the tags links them in the same statement (data-modifying CTEs) and answers with the
names of the tags it was given, since no part of a statement sees the others' writes.

Every write takes the user's next change number in the same statement (backend.sync.stamping)
and stamps it on the todos it writes; a delete leaves a tombstone with it.
"""

from functools import cache
from typing import Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Integer,
    Text,
    all_,
    and_,
    any_,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import UUID as PgUUID
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.sql.selectable import CTE

from backend.sql import Statement
from backend.sync.models import TOMBSTONES
from backend.sync.stamping import advanced, advanced_first, number
from backend.tags.models import TAGS, TODO_TAGS
from backend.todos.models import TODOS
from backend.todos.pagination import SortOrder
from backend.todos.records import COLUMNS

C = TODOS.c
T = TAGS.c
LINKS = TODO_TAGS.c
ONE: ColumnElement[int] = literal_column("1", Integer)
NO_TAGS: ColumnElement[Any] = literal_column("'{}'::text[]")
TAG_IDS = bindparam("tag_ids", type_=ARRAY(PgUUID()))
ADVANCED = advanced()
CHANGE_SEQ = number(ADVANCED)  # the write's change number
ADVANCED_FIRST = advanced_first(ADVANCED)  # on a write's rows: the counter is locked first


def _names(query: Any) -> ColumnElement[Any]:
    """The tag names of `query` (a SELECT from `tag`) as a sorted array, never NULL."""
    ordered = aggregate_order_by(T.name, func.lower(T.name), T.name)
    return func.coalesce(
        query.with_only_columns(func.array_agg(ordered)).scalar_subquery(), NO_TAGS
    )


def _tags_of(todo_id: Any) -> ColumnElement[Any]:
    """The names of the tags linked to `todo_id`."""
    linked = select(T.name).select_from(TODO_TAGS.join(TAGS, T.id == LINKS.tag_id))
    return _names(linked.where(LINKS.todo_id == todo_id))


# The names of the tags `tag_ids`: what a write that links them answers with.
GIVEN_TAGS = _names(select(T.name).where(T.user_id == bindparam("user_id"), T.id == any_(TAG_IDS)))


def returned(source: Any = TODOS, tags: ColumnElement[Any] | None = None) -> list[Any]:
    """The columns of a TodoRecord, in order, from `source` (the table or a CTE)."""
    if tags is None:
        tags = _tags_of(source.c.id)
    return [tags if name == "tags" else source.c[name] for name in COLUMNS]


RETURNED = returned()


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
_NEW_TODO = insert(TODOS).values(
    id=bindparam("id"),
    user_id=bindparam("user_id"),
    title=bindparam("title"),
    description=bindparam("description"),
    completed=bindparam("completed"),
    completed_at=case((bindparam("completed"), func.now())),
    priority=bindparam("priority"),
    due_at=bindparam("due_at"),
    remind_at=bindparam("remind_at"),
    recurrence=bindparam("recurrence"),
    time_zone=bindparam("time_zone"),
    previous_id=bindparam("previous_id"),
    change_seq=CHANGE_SEQ,
)
INSERT = Statement.compile(_NEW_TODO.returning(*returned(tags=NO_TAGS)))


def _linking(target: CTE) -> Any:
    """An INSERT that links the todo written by `target` to the tags `tag_ids`."""
    rows = select(target.c.user_id, target.c.id, func.unnest(TAG_IDS))
    return (
        pg_insert(TODO_TAGS)
        .from_select(["user_id", "todo_id", "tag_id"], rows)
        .on_conflict_do_nothing()
        .cte("linked")
    )


_created = _NEW_TODO.returning(*TODOS.c).cte("created")
# A todo and its links to the tags `tag_ids`, in one statement.
INSERT_TAGGED = Statement.compile(
    select(*returned(_created, GIVEN_TAGS)).add_cte(_linking(_created))
)
# The successor of a completed recurring todo, carrying the same tags as `previous_id`.
_spawned = _NEW_TODO.returning(C.user_id, C.id).cte("spawned")
_copied_links = insert(TODO_TAGS).from_select(
    ["user_id", "todo_id", "tag_id"],
    select(_spawned.c.user_id, _spawned.c.id, LINKS.tag_id).where(
        LINKS.user_id == bindparam("user_id"), LINKS.todo_id == bindparam("previous_id")
    ),
)
SPAWN = Statement.compile(select(_spawned.c.id).add_cte(_copied_links.cte("copied")))
# The todo, locked until the transaction ends: a completion that may spawn a successor reads
# and decides under this lock, so a concurrent one waits and then sees it completed.
# It takes a change number first (the completion that follows will write under it), so the
# counter is locked before the todo, as in every other write.
LOCK = Statement.compile(
    select(*RETURNED).where(_one(), ADVANCED_FIRST).with_for_update(of=TODOS).add_cte(ADVANCED)
)


def _tombstoned(where: ColumnElement[bool]) -> Any:
    """The todos matching `where`, deleted, each leaving a tombstone; RETURNING their ids."""
    gone = delete(TODOS).where(where, ADVANCED_FIRST).returning(C.user_id, C.id).cte("gone")
    rows = select(gone.c.user_id, CHANGE_SEQ, gone.c.id)
    tombstones = insert(TOMBSTONES).from_select(["user_id", "change_seq", "todo_id"], rows)
    return tombstones.returning(TOMBSTONES.c.todo_id)


_cleared = _tombstoned(_mine(C.completed)).cte("cleared")
CLEAR_COMPLETED = Statement.compile(select(func.count()).select_from(_cleared))
STATS = Statement.compile(
    select(
        func.count(),
        func.count().filter(C.completed),
        func.count().filter(~C.completed, C.due_at < func.now()),
    ).where(_mine())
)


@cache
def delete_one(*, guarded: bool) -> Statement:
    return Statement.compile(_tombstoned(_one(guarded=guarded)))


# A completion that cannot spawn a successor: not recurring, already completed, or already
# spawned one. Completions are written in one statement with this condition; only those that
# fail it (a recurring todo's first completion) take the locked path.
CANNOT_SPAWN = or_(C.recurrence.is_(None), C.completed, C.next_id.is_not(None))


@cache
def update_one(
    fields: frozenset[str], *, guarded: bool, tagged: bool = False, cannot_spawn: bool = False
) -> Statement:
    """UPDATE of `fields` (each bound under its own name) that bumps the version; with
    `guarded`, only if the version is one of `versions` (If-Match); with `tagged`, the todo's
    tags become exactly `tag_ids`; with `cannot_spawn`, only if CANNOT_SPAWN holds."""
    values: dict[str, object] = {name: bindparam(name, type_=C[name].type) for name in fields}
    values["version"] = C.version + ONE
    values["updated_at"] = func.now()
    values["change_seq"] = CHANGE_SEQ
    if "completed" in fields:
        # Completing keeps the first completion time; reopening clears it.
        values["completed_at"] = case(
            (bindparam("completed"), func.coalesce(C.completed_at, func.now()))
        )
    where = and_(_one(guarded=guarded), ADVANCED_FIRST)
    if cannot_spawn:
        where = and_(where, CANNOT_SPAWN)
    statement = update(TODOS).where(where).values(values)
    if not tagged:
        return Statement.compile(statement.returning(*RETURNED))
    updated = statement.returning(*TODOS.c).cte("updated")
    unlinked = delete(TODO_TAGS).where(
        LINKS.user_id == bindparam("user_id"),
        LINKS.todo_id.in_(select(updated.c.id)),
        LINKS.tag_id != all_(TAG_IDS),
    )
    return Statement.compile(
        select(*returned(updated, GIVEN_TAGS)).add_cte(unlinked.cte("unlinked"), _linking(updated))
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
        case "remind_before":
            return C.remind_at < bindparam("remind_before")
        case "tags":
            return C.id.in_(_TAGGED_WITH_ALL)
    raise ValueError(f"no such filter: {name}")


# The user's todos carrying every tag named in `tags` (case-insensitively): each requested
# name matches at most one tag, so a todo qualifies when it has as many matching links as
# there are distinct requested names.
_requested = select(func.lower(literal_column("requested"))).select_from(
    func.unnest(bindparam("tags", type_=ARRAY(Text))).alias("requested")
)
_DISTINCT_NAMES = func.count(func.distinct(func.lower(literal_column("requested"))))
_TAGGED_WITH_ALL = (
    select(LINKS.todo_id)
    .select_from(TODO_TAGS.join(TAGS, T.id == LINKS.tag_id))
    .where(T.user_id == bindparam("user_id"), func.lower(T.name).in_(_requested))
    .group_by(LINKS.todo_id)
    .having(func.count() == _requested.with_only_columns(_DISTINCT_NAMES).scalar_subquery())
)


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
