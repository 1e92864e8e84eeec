"""The SQL of every tag statement, compiled once (see backend.sql).

Every statement is scoped by `user_id = $user_id`; TagRepository supplies it. Renaming or
deleting a tag changes the representation of every todo carrying it, so the same statement
bumps those todos' versions (their ETags) and stamps them with a change number (backend.sync):
a client's cached copy can never go stale silently, nor miss the change in the change feed.
"""

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Integer,
    Text,
    and_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    literal_column,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import UUID as PgUUID
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.sql.selectable import CTE

from backend.sql import Statement
from backend.sync.stamping import advanced, advanced_first, number
from backend.tags.models import TAGS, TODO_TAGS
from backend.todos.models import TODOS

T = TAGS.c
LINKS = TODO_TAGS.c
TODO = TODOS.c
ONE: ColumnElement[int] = literal_column("1", Integer)

# Tag creation takes this transaction-scoped advisory lock (with the user's hash as the second
# key), so the 1,000-tag bound holds under concurrent creates. Pooler-safe: it ends with the
# transaction.
_LOCK_SPACE = int.from_bytes(b"tags", "big")
_TAG_LOCK = func.pg_advisory_xact_lock(_LOCK_SPACE, func.hashtext(bindparam("user_id")))
ADVANCED = advanced()
# A rename takes the tag lock before its change number: a transaction that created tags (under
# that lock) and waits for the counter may hold the very name the rename writes, and the
# rename, holding the counter, would wait for it in the unique index — a deadlock.
RENAMING = advanced(after=_TAG_LOCK)


def _mine(*conditions: ColumnElement[bool]) -> ColumnElement[bool]:
    return and_(T.user_id == bindparam("user_id"), *conditions)


def _todo_count(tag_id: ColumnElement[object]) -> ColumnElement[int]:
    return (
        select(func.count()).select_from(TODO_TAGS).where(LINKS.tag_id == tag_id).scalar_subquery()
    )


def _bump_todos_tagged(tag_ids: object, advanced: CTE, *condition: ColumnElement[bool]) -> object:
    """An UPDATE that bumps the version of the user's todos carrying one of `tag_ids`,
    stamping them with the number `advanced` took."""
    tagged = select(LINKS.todo_id).where(LINKS.tag_id.in_(tag_ids))  # type: ignore[arg-type]
    return (
        update(TODOS)
        .where(TODO.user_id == bindparam("user_id"), TODO.id.in_(tagged), *condition)
        .values(version=TODO.version + ONE, updated_at=func.now(), change_seq=number(advanced))
    )


_BY_NAME = [func.lower(T.name), T.name, T.id]  # case-insensitive; ties broken exactly
RETURNED = [T.id, T.name, T.color, _todo_count(T.id), T.created_at, T.updated_at]
THE_TAG = T.id == bindparam("tag_id")

LIST = Statement.compile(select(*RETURNED).where(_mine()).order_by(*_BY_NAME))
GET = Statement.compile(select(*RETURNED).where(_mine(THE_TAG)))
LOCK = Statement.compile(select(_TAG_LOCK))
_COUNT = select(func.count()).select_from(TAGS).where(_mine()).scalar_subquery()
COUNT = Statement.compile(select(_COUNT))
# One tag, unless the user already has `max_tags` (then no row).
INSERT = Statement.compile(
    insert(TAGS)
    .from_select(
        ["id", "user_id", "name", "color"],
        select(
            bindparam("id", type_=PgUUID()),
            bindparam("user_id", type_=Text()),
            bindparam("name", type_=Text()),
            bindparam("color", type_=Text()),
        ).where(bindparam("max_tags") > _COUNT),
    )
    .returning(T.id, T.name, T.color, literal_column("0"), T.created_at, T.updated_at)
)

# The requested names, duplicates (as PostgreSQL lowers them) collapsed to their first
# spelling, each with the id of the user's tag of that name, or NULL when there is none.
_requested = (
    func.unnest(bindparam("names", type_=ARRAY(Text)))
    .table_valued("name", with_ordinality="position")
    .render_derived(name="requested")
)
_distinct = (
    select(_requested.c.name, _requested.c.position)
    .ext(distinct_on(func.lower(_requested.c.name)))
    .order_by(func.lower(_requested.c.name), _requested.c.position)
    .subquery("wanted")
)
RESOLVE = Statement.compile(
    select(_distinct.c.name, T.id)
    .select_from(
        _distinct.outerjoin(TAGS, _mine(func.lower(T.name) == func.lower(_distinct.c.name)))
    )
    .order_by(_distinct.c.position)
)
# Creates tags for `names` (with `ids`) unless that would take the user past `max_tags`.
_fresh = (
    func.unnest(bindparam("ids", type_=ARRAY(PgUUID())), bindparam("names", type_=ARRAY(Text)))
    .table_valued("id", "name")
    .render_derived(name="fresh")
)
INSERT_NAMED = Statement.compile(
    pg_insert(TAGS)
    .from_select(
        ["id", "user_id", "name"],
        select(_fresh.c.id, bindparam("user_id", type_=Text()), _fresh.c.name).where(
            _COUNT + func.cardinality(bindparam("names", type_=ARRAY(Text)))
            <= bindparam("max_tags")
        ),
    )
    # Names another request created after this one looked them up are simply there.
    .on_conflict_do_nothing()
    .returning(T.id)
)


def update_one(fields: frozenset[str]) -> Statement:
    """UPDATE of `fields` (name, color) of the tag `tag_id`. A rename bumps the tagged todos,
    but only if the name really changes: every part of one statement reads the snapshot from
    before the update, so `tag` there still holds the old name."""
    values = {name: bindparam(name, type_=T[name].type) for name in fields}
    renaming = "name" in fields
    # A rename takes the tag lock, then a change number, before it locks the tag or any todo
    # (stamping).
    first = [advanced_first(RENAMING)] if renaming else []
    changed = (
        update(TAGS)
        .where(_mine(THE_TAG), *first)
        .values(updated_at=func.now(), **values)
        .returning(T.id, T.name, T.color, T.created_at, T.updated_at)
        .cte("changed")
    )
    statement = select(
        changed.c.id,
        changed.c.name,
        changed.c.color,
        _todo_count(changed.c.id),
        changed.c.created_at,
        changed.c.updated_at,
    )
    if renaming:
        renamed = exists().where(_mine(THE_TAG, T.name != changed.c.name))
        statement = statement.add_cte(
            RENAMING,
            _bump_todos_tagged(select(changed.c.id), RENAMING, renamed).cte("bumped"),  # type: ignore[attr-defined]
        )
    return Statement.compile(statement)


UPDATES = {
    fields: update_one(fields)
    for fields in (frozenset({"name"}), frozenset({"color"}), frozenset({"name", "color"}))
}

# A rename or a delete first takes its change number in a statement of its own (in its
# transaction): the statement that then writes reads a snapshot taken after the counter is
# locked, and so sees the links every write that held the counter before it committed. In one
# statement, the snapshot would predate the wait, and todos linked meanwhile would keep their
# versions and never reach the change feed.
TAKE_FOR_RENAME = Statement.compile(select(RENAMING.c.seq))
TAKE_FOR_DELETE = Statement.compile(select(ADVANCED.c.seq))

_removed = (
    delete(TAGS).where(_mine(THE_TAG), advanced_first(ADVANCED)).returning(T.id).cte("removed")
)
DELETE = Statement.compile(
    select(func.count())
    .select_from(_removed)
    .add_cte(ADVANCED, _bump_todos_tagged(select(_removed.c.id), ADVANCED).cte("bumped"))  # type: ignore[attr-defined]
)
