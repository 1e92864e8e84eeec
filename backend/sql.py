"""SQLAlchemy Core statements compiled once into the SQL asyncpg executes.

Statements are written against the SQLModel tables (so they cannot drift from the models and
migrations), compiled at import or on first use, and then executed on asyncpg directly: no
SQLAlchemy on the request path, only the `$n` SQL text and the order of its parameters.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.dialects.postgresql.asyncpg import dialect as AsyncpgDialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

_DIALECT = AsyncpgDialect()  # type: ignore[no-untyped-call]


@dataclass(frozen=True, slots=True)
class Statement:
    """SQL with `$n` placeholders and, for each position, the name of its parameter."""

    sql: str
    names: tuple[str, ...]
    constants: Mapping[str, Any]  # parameters the statement itself fixed (literals)

    @classmethod
    def compile(cls, statement: ClauseElement) -> "Statement":
        compiled = statement.compile(dialect=_DIALECT)
        assert isinstance(compiled, SQLCompiler)
        names = tuple(compiled.positiontup or ())
        constants = {name: value for name, value in compiled.params.items() if value is not None}
        return cls(sql=compiled.string, names=names, constants=constants)

    def args(self, **values: Any) -> tuple[Any, ...]:
        """The positional arguments for asyncpg, from the named values (and the constants)."""
        constants = self.constants
        return tuple(values[name] if name in values else constants[name] for name in self.names)
