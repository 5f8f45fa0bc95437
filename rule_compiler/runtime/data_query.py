"""A data trigger's query, run read-only, and the check its result must pass.

Validation already proved the SQL is one read-only query over catalog tables, made only of allowed
functions and constructs (``sql_check``); here it is proved again (the spec could be stale, stored
before a stricter check, or edited) and then run where all author SQL runs
(:func:`~rule_compiler.runtime.author_sql.author_sql_connection`): a transaction the database itself
keeps read-only, with statement and lock timeouts, under the catalog's query role when it names one,
always rolled back, on a connection that is not reused. Values are bound (``:logical_date``), never
spliced into the text, and at most ``max_rows`` rows are read.
"""

from __future__ import annotations

import datetime as dt
import decimal
import operator as op
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from rule_compiler.runtime.author_sql import (
    LOCK_TIMEOUT_SECONDS,
    AuthorSqlError,
    author_sql_connection,
    read_only_transaction,
)
from rule_compiler.sql_check import QUERY_PARAMETERS, UnsafeQueryError, check_read_only

__all__ = [
    "MAX_ROWS",
    "STATEMENT_TIMEOUT_SECONDS",
    "DataQueryError",
    "QueryResult",
    "check_result",
    "read_only_transaction",
    "result_summary",
    "run_query",
]

MAX_ROWS = 1_000
STATEMENT_TIMEOUT_SECONDS = 30
_ORDER: dict[str, Callable[[Any, Any], bool]] = {"gt": op.gt, "gte": op.ge, "lt": op.lt, "lte": op.le}
#: SQLSTATE of a statement cancelled by ``statement_timeout``, and of a ``lock_timeout``.
_QUERY_CANCELED, _LOCK_NOT_AVAILABLE = "57014", "55P03"


class DataQueryError(AuthorSqlError):
    """The query cannot run or its result cannot be checked; the message says what to change."""


@dataclass(frozen=True)
class QueryResult:
    """The first ``max_rows`` rows; ``truncated`` when the query had more."""

    rows: tuple[tuple[Any, ...], ...]
    truncated: bool


def run_query(
    engine: sa.Engine,
    sql: str,
    values: Mapping[str, Any],
    *,
    max_rows: int = MAX_ROWS,
    timeout_seconds: float = STATEMENT_TIMEOUT_SECONDS,
    role: str | None = None,
) -> QueryResult:
    """Prove ``sql`` read-only, bind the run's values it names, and read at most ``max_rows`` rows
    (as the catalog's query ``role`` of the connection when it names one)."""
    try:
        query = check_read_only(sql, engine.dialect.name)
    except UnsafeQueryError as exc:
        raise DataQueryError(f"the data trigger's SQL was refused: {exc}") from None
    unknown = sorted(set(query.parameters) - QUERY_PARAMETERS)
    if unknown:
        raise DataQueryError(f"unknown bind parameters {', '.join(':' + p for p in unknown)}")
    statement = sa.text(sql).bindparams(
        *(sa.bindparam(name, type_=sa.DateTime(timezone=True)) for name in query.parameters)
    )
    bound = {name: _utc(values.get(name)) for name in query.parameters}
    try:
        with author_sql_connection(engine, timeout_seconds, role=role) as ro:
            streamed = {"stream_results": True, "max_row_buffer": max_rows + 1}  # no full fetch
            rows = ro.execute(statement, bound, execution_options=streamed).fetchmany(max_rows + 1)
    except sa.exc.OperationalError as exc:
        code = _sqlstate(exc)
        if code == _QUERY_CANCELED or "interrupted" in str(exc.orig):
            raise DataQueryError(
                f"the data trigger's query ran longer than {timeout_seconds:g} s and was stopped"
            ) from None
        if code == _LOCK_NOT_AVAILABLE:
            raise DataQueryError(
                f"the data trigger's query waited longer than {LOCK_TIMEOUT_SECONDS} s for a lock "
                "another session holds, and was stopped"
            ) from None
        raise
    except AuthorSqlError as exc:
        if isinstance(exc, DataQueryError):
            raise
        raise DataQueryError(f"the data trigger's query cannot run: {exc}") from None
    return QueryResult(tuple(tuple(r) for r in rows[:max_rows]), truncated=len(rows) > max_rows)


def check_result(check: Mapping[str, Any], rows: Sequence[Sequence[Any]]) -> bool:
    """Whether the result passes ``check``: ``returns_rows``, or the first row's first column
    compared with ``value``. No row or a NULL never passes."""
    operator, expected = check["operator"], check.get("value")
    if operator == "returns_rows":
        return bool(rows)
    if operator not in ("equals", "not_equals", *_ORDER):
        raise DataQueryError(f"unknown data check operator {operator!r}")
    actual = rows[0][0] if rows and len(rows[0]) else None
    if actual is None or expected is None:
        return False
    if operator in _ORDER:
        compare = _ORDER[operator]
        return compare(_number(actual, operator, "the query's result"), _number(expected, operator, "value"))
    equal = _equal(actual, expected)
    return equal if operator == "equals" else not equal


def result_summary(check: Mapping[str, Any], result: QueryResult) -> dict[str, Any]:
    """What may be shown (XCom, logs): the row count, and the scalar only when it is a number."""
    summary: dict[str, Any] = {"operator": check["operator"], "rows": len(result.rows)}
    if result.truncated:
        summary["truncated"] = True
    if check["operator"] != "returns_rows" and result.rows and result.rows[0]:
        value = result.rows[0][0]
        if isinstance(value, bool) or value is None:
            summary["value"] = value
        elif isinstance(value, int | float | decimal.Decimal):
            summary["value"] = float(value) if isinstance(value, decimal.Decimal) else value
    return summary


def _number(value: Any, operator: str, what: str) -> decimal.Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | decimal.Decimal):
        raise DataQueryError(
            f"{operator} compares numbers, but {what} is {type(value).__name__}; "
            "make the query return one number (count, sum, ...) or use equals"
        )
    return decimal.Decimal(str(value))


def _equal(actual: Any, expected: Any) -> bool:
    numbers = (int, float, decimal.Decimal)
    if isinstance(expected, bool):
        return actual in (0, 1) and bool(actual) is expected  # SQLite has no booleans: 0 and 1
    if isinstance(actual, numbers) and isinstance(expected, numbers) and not isinstance(actual, bool):
        return decimal.Decimal(str(actual)) == decimal.Decimal(str(expected))
    return bool(actual == expected)


def _utc(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def _sqlstate(exc: sa.exc.DBAPIError) -> str | None:
    code = getattr(exc.orig, "pgcode", None) or getattr(getattr(exc.orig, "diag", None), "sqlstate", None)
    return str(code) if code else None
