"""How a write statement takes its change number (see backend.sync.models).

A write statement carries `advanced()` as a CTE: it advances the user's counter and yields
the new number. `number(advanced)` is that number, for the columns the write stamps, and
`advanced_first(advanced)` is a condition to put on the statement's rows: PostgreSQL
evaluates it once, before reading any row, so the counter is locked before any todo. Every
transaction that writes todos takes its locks in this order — the user's counter, then the
todos — and two writers of one user can therefore wait for each other but never deadlock.

A write that then matches nothing (an unknown id, a stale If-Match) has still used a number:
the sequence has gaps, which readers skip.
"""

from typing import Any

from sqlalchemy import ColumnElement, bindparam, literal_column, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.sql.selectable import CTE

from backend.sync.models import CHANGE_COUNTERS

COUNTER = CHANGE_COUNTERS.c


def advanced(name: str = "advanced") -> CTE:
    """A CTE whose one row (`seq`) is the user's next change number, now taken."""
    upsert = pg_insert(CHANGE_COUNTERS).values(
        user_id=bindparam("user_id"), last_seq=literal_column("1")
    )
    return (
        upsert.on_conflict_do_update(
            index_elements=[COUNTER.user_id],
            set_={"last_seq": COUNTER.last_seq + literal_column("1")},
        )
        .returning(COUNTER.last_seq.label("seq"))
        .cte(name)
    )


def number(cte: CTE) -> Any:
    """The change number `cte` took, as a scalar for a column or a value."""
    return select(cte.c.seq).scalar_subquery()


def advanced_first(cte: CTE) -> ColumnElement[bool]:
    """A condition that holds, evaluated before any row is read: it takes the number."""
    taken: ColumnElement[bool] = number(cte).is_not(None)
    return taken
