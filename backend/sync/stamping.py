"""How a write statement takes its change number (see backend.sync.models).

A write statement carries `advanced()` as a CTE: it advances the user's counter and yields
the new number. `number(advanced)` is that number, for the columns the write stamps, and
`advanced_first(advanced)` is a condition to put on the statement's rows: PostgreSQL
evaluates it once, before reading any row, so the counter is locked before any todo. Every
transaction that writes todos takes its locks in this order — the user's counter, then the
todos — and two writers of one user can therefore wait for each other but never deadlock.
A transaction that creates tags takes the user's tag lock before all of these, so a statement
that writes tag names (a rename) takes it first too (`advanced(after=...)`).

A write that then matches nothing (an unknown id, a stale If-Match) has still used a number:
the sequence has gaps, which readers skip.
"""

from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Text, bindparam, literal_column, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.sql.selectable import CTE

from backend.sync.models import CHANGE_COUNTERS

COUNTER = CHANGE_COUNTERS.c


def advanced(*, after: ColumnElement[Any] | None = None) -> CTE:
    """A CTE whose one row (`seq`) is the user's next change number, now taken. With `after`
    (a lock that must come before the counter's, e.g. the user's tag lock): evaluated first,
    as the row that advances the counter is built from it."""
    if after is None:
        upsert = pg_insert(CHANGE_COUNTERS).values(
            user_id=bindparam("user_id"), last_seq=literal_column("1")
        )
    else:
        # A volatile function in a subquery's output is evaluated, never optimized away.
        first = select(after.label("taken")).subquery("first")
        one = literal_column("1", BigInteger)
        row = select(bindparam("user_id", type_=Text()), one).select_from(first)
        upsert = pg_insert(CHANGE_COUNTERS).from_select(["user_id", "last_seq"], row)
    return (
        upsert.on_conflict_do_update(
            index_elements=[COUNTER.user_id],
            set_={"last_seq": COUNTER.last_seq + literal_column("1")},
        )
        .returning(COUNTER.last_seq.label("seq"))
        .cte("advanced")
    )


def number(cte: CTE) -> Any:
    """The change number `cte` took, as a scalar for a column or a value."""
    return select(cte.c.seq).scalar_subquery()


def advanced_first(cte: CTE) -> ColumnElement[bool]:
    """A condition that holds, evaluated before any row is read: it takes the number."""
    taken: ColumnElement[bool] = number(cte).is_not(None)
    return taken
