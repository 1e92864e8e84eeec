"""The SQL of the change log (see backend.sync.models), compiled once (backend.sql).

Reading the log is one statement: the user's counter (its head and pruning horizon) and the
entries after a position — todos by their change number, tombstones, fired reminders —
merged in (change number, todo id) order, each branch stopping at the page size. Every
branch reads the same snapshot as the counter, so "every entry up to the head" is exact.

The statements of the process-wide loop (which users' logs moved, whose reminders are due)
and of pruning are maintenance, not a user's request: they name the users they serve.
"""

from functools import cache
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    ColumnElement,
    DateTime,
    Text,
    and_,
    bindparam,
    cast,
    delete,
    exists,
    func,
    literal_column,
    null,
    select,
    true,
    tuple_,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert

from backend.sql import Statement
from backend.sync.models import CHANGE_COUNTERS, REMINDERS, TOMBSTONES
from backend.sync.stamping import advanced, advanced_first, number
from backend.todos.models import TODOS
from backend.todos.statements import returned

C = TODOS.c
COUNTER = CHANGE_COUNTERS.c
USER_ID = bindparam("user_id", type_=Text())
LIMIT: Any = bindparam("limit")


def _after(seq: Any, todo_id: Any) -> ColumnElement[bool]:
    return tuple_(seq, todo_id) > tuple_(bindparam("after_seq"), bindparam("after_id"))


def _branch(op: str, table: Any, todo_id: Any, *extra: Any) -> Any:
    """One kind of entry after the position, in log order, at most `limit`."""
    seq = table.c.change_seq
    return (
        select(
            literal_column(f"'{op}'", Text).label("op"),
            seq.label("seq"),
            todo_id.label("todo_id"),
            *extra,
        )
        .where(table.c.user_id == USER_ID, _after(seq, todo_id))
        .order_by(seq, todo_id)
        .limit(LIMIT)
    )


@cache
def log_page(*, reminders: bool) -> Statement:
    """The user's head and horizon, then up to `limit` entries after (after_seq, after_id):
    op, seq, todo id, reminder moment and, unless the todo is gone, its columns."""
    no_moment = cast(null(), DateTime(timezone=True)).label("remind_at")
    branches = [
        _branch("upsert", TODOS, C.id, no_moment),
        _branch("delete", TOMBSTONES, TOMBSTONES.c.todo_id, no_moment),
    ]
    if reminders:
        branches.append(_branch("reminder", REMINDERS, REMINDERS.c.todo_id, REMINDERS.c.remind_at))
    merged = union_all(*branches).subquery("merged")
    log = select(merged).order_by(merged.c.seq, merged.c.todo_id).limit(LIMIT).subquery("log")
    counter = (
        select(
            func.coalesce(func.max(COUNTER.last_seq), 0).label("head"),
            func.coalesce(func.max(COUNTER.pruned_through), 0).label("pruned_through"),
        )
        .where(COUNTER.user_id == USER_ID)
        .subquery("counter")
    )
    todo = TODOS.alias("current")
    found = and_(todo.c.user_id == USER_ID, todo.c.id == log.c.todo_id, log.c.op != "delete")
    statement = (
        select(
            counter.c.head,
            counter.c.pruned_through,
            log.c.op,
            log.c.seq,
            log.c.todo_id,
            log.c.remind_at,
            *returned(todo),
        )
        .select_from(counter.outerjoin(log, true()).outerjoin(todo, found))
        .order_by(log.c.seq, log.c.todo_id)
    )
    return Statement.compile(statement)


# For the process-wide loop (backend.sync.hub): of the users `user_ids`, each one's head, and
# whether a reminder of theirs is due and has not fired. A reminder fires once, while it is
# at most a day late (a stream that opens later does not replay stale ones).
USER_IDS = bindparam("user_ids", type_=ARRAY(Text))
_DUE_WITHIN: Any = literal_column("interval '1 day'")


def _due(user_id: Any) -> ColumnElement[bool]:
    fired = exists().where(
        REMINDERS.c.user_id == C.user_id,
        REMINDERS.c.todo_id == C.id,
        REMINDERS.c.remind_at == C.remind_at,
    )
    return and_(
        C.user_id == user_id,
        C.remind_at <= func.now(),
        C.remind_at > func.now() - _DUE_WITHIN,
        ~C.completed,
        ~fired,
    )


_users = func.unnest(USER_IDS).table_valued("id").render_derived(name="watched")
HEADS = Statement.compile(
    select(
        _users.c.id, func.coalesce(COUNTER.last_seq, 0), exists().where(_due(_users.c.id))
    ).select_from(_users.outerjoin(CHANGE_COUNTERS, COUNTER.user_id == _users.c.id))
)
# Fire the user's due reminders: each one claimed once, whichever instance gets there first,
# under the user's next change number (taken first, as every write does).
_ADVANCED = advanced()
FIRE_REMINDERS = Statement.compile(
    pg_insert(REMINDERS)
    .from_select(
        ["user_id", "todo_id", "remind_at", "change_seq"],
        select(C.user_id, C.id, C.remind_at, number(_ADVANCED)).where(
            _due(USER_ID), advanced_first(_ADVANCED)
        ),
    )
    .on_conflict_do_nothing()
    .returning(REMINDERS.c.todo_id)
    .add_cte(_ADVANCED)
)

# Pruning: entries older than `keep` go, at most `batch` per statement, and each user's
# horizon moves past the newest of theirs that went.
KEEP = bindparam("keep", type_=BigInteger())  # seconds


def _prune(table: Any, moment: Any) -> Statement:
    oldest = (
        select(table.c.user_id, table.c.change_seq)
        .where(moment < func.now() - KEEP * literal_column("interval '1 second'"))
        .limit(bindparam("batch"))
    )
    gone = (
        delete(table)
        .where(tuple_(table.c.user_id, table.c.change_seq).in_(oldest))
        .returning(table.c.user_id, table.c.change_seq)
        .cte("gone")
    )
    newest = (
        select(gone.c.user_id, func.max(gone.c.change_seq).label("seq"))
        .group_by(gone.c.user_id)
        .subquery("newest")
    )
    moved = (
        update(CHANGE_COUNTERS)
        .where(COUNTER.user_id == newest.c.user_id)
        .values(pruned_through=func.greatest(COUNTER.pruned_through, newest.c.seq))
        .cte("moved")
    )
    return Statement.compile(select(func.count()).select_from(gone).add_cte(moved))


PRUNE_TOMBSTONES = _prune(TOMBSTONES, TOMBSTONES.c.deleted_at)
PRUNE_REMINDERS = _prune(REMINDERS, REMINDERS.c.fired_at)
PRUNE_LOCK = Statement.compile(
    select(func.pg_try_advisory_xact_lock(literal_column(str(int.from_bytes(b"todo-log", "big")))))
)
