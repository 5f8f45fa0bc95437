"""SQL building blocks whose spelling differs between Postgres and SQLite, and SQLite's REGEXP.

- ``strpos(text, part)``: ``strpos`` on Postgres, ``instr`` elsewhere (case-sensitive substring
  search; ``LIKE`` is case-insensitive on SQLite, so it is not used);
- ``json_has(column, ...)``: a JSON array has the element, a JSON string the substring;
- ``json_is_empty(column)``: the JSON value is ``[]``, ``{}``, ``""`` or ``null``;
- ``json_is_null(column)``: the JSON value is ``null`` (Python reads it as ``None``, i.e. NULL);
- :class:`UtcDateTime`: binds aware datetimes in UTC (SQLite stores naive UTC text);
- :func:`register_sqlite_functions`: the ``REGEXP`` function SQLAlchemy's ``regexp_match`` needs.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from rule_compiler.conditions.regex import UnsafePatternError, compile_pattern, search


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """A bound date-time in UTC; naive on SQLite, where SQLAlchemy stores naive UTC text."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        value = (value if value.tzinfo is not None else value.replace(tzinfo=UTC)).astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value


class strpos(FunctionElement[int]):
    """1-based position of the second argument in the first, 0 when absent."""

    type = sa.Integer()
    inherit_cache = True


@compiles(strpos)
def _strpos_default(element: strpos, compiler: SQLCompiler, **kw: Any) -> str:
    return f"instr({compiler.process(element.clauses, **kw)})"


@compiles(strpos, "postgresql")
def _strpos_postgres(element: strpos, compiler: SQLCompiler, **kw: Any) -> str:
    return f"strpos({compiler.process(element.clauses, **kw)})"


class json_has(FunctionElement[bool]):
    """``json_has(column, item_json, item_types, item_text)``: like Python's ``contains``.

    A JSON array has ``item`` as an element (same JSON type); a JSON string has ``item_text`` as a
    substring (``item_text`` is NULL when the item is not text); anything else has nothing.
    """

    type = sa.Boolean()
    inherit_cache = True


def _json_args(element: FunctionElement[Any], compiler: SQLCompiler, **kw: Any) -> list[str]:
    return [compiler.process(clause, **kw) for clause in element.clauses]


@compiles(json_has, "postgresql")
def _json_has_postgres(element: json_has, compiler: SQLCompiler, **kw: Any) -> str:
    column, item, _types, text = _json_args(element, compiler, **kw)
    value = f"CAST({column} AS jsonb)"
    return (
        f"(CASE jsonb_typeof({value}) WHEN 'array' THEN {value} @> jsonb_build_array(CAST({item} AS jsonb)) "
        f"WHEN 'string' THEN coalesce(strpos({value} #>> '{{}}', {text}), 0) > 0 ELSE false END)"
    )


@compiles(json_has)
def _json_has_sqlite(element: json_has, compiler: SQLCompiler, **kw: Any) -> str:
    column, item, types, text = _json_args(element, compiler, **kw)
    # json_each's "type" keeps 1, '1' and true apart, as Python does.
    # Only SQLAlchemy-compiled column expressions and bind-parameter placeholders are interpolated.
    return (
        f"(CASE json_type({column}) WHEN 'array' THEN EXISTS (SELECT 1 FROM json_each({column}) AS e "  # noqa: S608
        f"WHERE e.type IN (SELECT value FROM json_each({types})) AND e.value = json_extract({item}, '$')) "
        f"WHEN 'text' THEN coalesce(instr(json_extract({column}, '$'), {text}), 0) > 0 ELSE 0 END)"
    )


def json_item(value: Any) -> tuple[str, str]:
    """``value`` as JSON text, and the JSON list of SQLite ``json_each`` types it can appear as."""
    if isinstance(value, bool):
        return json.dumps(value), json.dumps(["true" if value else "false"])
    if isinstance(value, int | float):
        return json.dumps(value), json.dumps(["integer", "real"])
    return json.dumps(value), json.dumps(["text"])


class json_is_empty(FunctionElement[bool]):
    """The JSON value is ``[]``, ``{}``, ``""`` or ``null``."""

    type = sa.Boolean()
    inherit_cache = True


@compiles(json_is_empty, "postgresql")
def _json_is_empty_postgres(element: json_is_empty, compiler: SQLCompiler, **kw: Any) -> str:
    (column,) = _json_args(element, compiler, **kw)
    return f"(CAST({column} AS jsonb) IN ('[]'::jsonb, '{{}}'::jsonb, '\"\"'::jsonb, 'null'::jsonb))"


@compiles(json_is_empty)
def _json_is_empty_sqlite(element: json_is_empty, compiler: SQLCompiler, **kw: Any) -> str:
    (column,) = _json_args(element, compiler, **kw)
    return f"(json({column}) IN ('[]', '{{}}', '\"\"', 'null'))"


class json_is_null(FunctionElement[bool]):
    """The JSON value is JSON ``null`` (which Python reads as ``None``, like SQL NULL)."""

    type = sa.Boolean()
    inherit_cache = True


@compiles(json_is_null, "postgresql")
def _json_is_null_postgres(element: json_is_null, compiler: SQLCompiler, **kw: Any) -> str:
    (column,) = _json_args(element, compiler, **kw)
    return f"(jsonb_typeof(CAST({column} AS jsonb)) = 'null')"


@compiles(json_is_null)
def _json_is_null_sqlite(element: json_is_null, compiler: SQLCompiler, **kw: Any) -> str:
    (column,) = _json_args(element, compiler, **kw)
    return f"(json_type({column}) = 'null')"


def _regexp(pattern: str | None, value: Any) -> int | None:
    if pattern is None or value is None:
        return None
    try:
        compiled = compile_pattern(pattern)
    except UnsafePatternError:
        return 0
    return int(search(compiled, value if isinstance(value, str) else str(value)))


def register_sqlite_functions(dbapi_connection: Any) -> None:
    """Give a SQLite DB-API connection the ``REGEXP`` function (Python ``re.search``, guarded).

    Register it on every new connection::

        sa.event.listen(engine, "connect", lambda conn, _record: register_sqlite_functions(conn))
    """
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.create_function("regexp", 2, _regexp, deterministic=True)
        return
    create = getattr(dbapi_connection, "create_function", None)
    if create is None:  # SQLAlchemy's async adapters wrap the driver connection
        create = dbapi_connection.driver_connection.create_function
    create("regexp", 2, _regexp, deterministic=True)
