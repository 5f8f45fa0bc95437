"""A report's queries: values bound from the run and its parameters, rows streamed to a CSV file.

Each query is proved read-only again (:func:`~rule_compiler.sql_check.check_read_only`) and runs
where all author SQL runs, :func:`~rule_compiler.runtime.author_sql.author_sql_connection` (the
database refuses writes, stops a statement at the timeout and a lock wait after a few seconds, the
catalog's query role applies, the connection is not reused), through a server-side cursor: rows are
fetched :data:`FETCH_ROWS` at a time and written straight to the file, so a large result never sits
in memory. At most ``row_limit`` rows are written; ``truncated`` says the query had more.

A query that can never succeed as it is (not read-only, binding a parameter the run does not have,
stopped by the database as a write or for want of a privilege, a query role that is missing or may
write) raises :class:`ReportQueryRefusedError`, which the task fails for good; a timeout, a lock
wait or a lost connection raises a plain :class:`ReportQueryError` and is retried.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import json
import math
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from rule_compiler.reporting.report_errors import ReportParameterError, ReportQueryError
from rule_compiler.reporting.workdir import QueryResult
from rule_compiler.runtime.author_sql import LOCK_TIMEOUT_SECONDS, AuthorSqlError, author_sql_connection
from rule_compiler.sql_check import QUERY_PARAMETERS, UnsafeQueryError, check_read_only

#: Rows fetched from the server-side cursor per round trip.
FETCH_ROWS = 5_000
#: SQLSTATE of a write refused in a read-only transaction (Postgres ``read_only_sql_transaction``).
_READ_ONLY_VIOLATION = "25006"
#: SQLSTATE of a ``lock_timeout``.
_LOCK_NOT_AVAILABLE = "55P03"
#: SQLSTATEs that retrying cannot change: a write in the read-only transaction, a missing privilege.
_REFUSED = frozenset({_READ_ONLY_VIOLATION, "42501"})
_TRUE = frozenset({"true", "yes", "1", "on"})
_FALSE = frozenset({"false", "no", "0", "off"})
#: Types the CSV writer already writes well (``str()``): no per-value conversion for their columns.
_PLAIN = frozenset({str, int, float, decimal.Decimal, dt.date, uuid.UUID})


class ReportQueryRefusedError(ReportQueryError):
    """A report query refused as it is: retrying cannot help, the report's SQL must change."""


def bind_values(
    parameters: Sequence[Mapping[str, Any]],
    overrides: Mapping[str, Any],
    *,
    interval_start: dt.datetime | str,
    interval_end: dt.datetime | str,
    logical_date: dt.datetime | str,
) -> dict[str, Any]:
    """The values a run binds: its times (aware, UTC) and each report parameter, typed.

    A parameter takes its ``overrides`` value (a string from the command line, or a JSON value from
    the run's ``conf``), else its default; one with neither is bound as NULL. An override naming no
    parameter is refused.
    """
    declared = {str(p["name"]): p for p in parameters}
    for name in overrides:
        if name in QUERY_PARAMETERS:
            raise ReportParameterError(f"'{name}' is set by the run itself and cannot be overridden")
        if name not in declared:
            known = ", ".join(sorted(declared)) or "none"
            raise ReportParameterError(f"the report has no parameter '{name}' (its parameters: {known})")
    values: dict[str, Any] = {
        "data_interval_start": utc(interval_start),
        "data_interval_end": utc(interval_end),
        "logical_date": utc(logical_date),
    }
    for name, parameter in declared.items():
        raw = overrides[name] if name in overrides else parameter.get("default")
        values[name] = None if raw is None else coerce(str(parameter["type"]), raw, name)
    return values


def coerce(kind: str, raw: Any, name: str = "value") -> Any:
    """``raw`` (a string or a JSON value) as a ``kind`` parameter: number → int or float, integer →
    int, boolean → bool, date → ``date``, string → str; ReportParameterError when it is not one."""
    reader = _COERCE.get(kind)
    if reader is None:
        raise ReportParameterError(f"parameter '{name}' has an unknown type '{kind}'")
    value = reader(raw)
    if value is _WRONG:
        article = "an" if kind[0] in "aeiou" else "a"
        hint = {"boolean": " (true or false)", "date": " (YYYY-MM-DD)"}.get(kind, "")
        raise ReportParameterError(f"parameter '{name}': {raw!r} is not {article} {kind}{hint}")
    return value


_WRONG = object()


def _string(raw: Any) -> Any:
    return _WRONG if isinstance(raw, bool | dict | list) else str(raw)


def _boolean(raw: Any) -> Any:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower() if isinstance(raw, str) else None
    return _WRONG if text not in _TRUE | _FALSE else text in _TRUE


def _date(raw: Any) -> Any:
    if isinstance(raw, dt.datetime):
        return _WRONG
    if isinstance(raw, dt.date):
        return raw
    try:
        return dt.date.fromisoformat(str(raw).strip())
    except ValueError:
        return _WRONG


def _decimal(raw: Any) -> decimal.Decimal | None:
    if isinstance(raw, bool):
        return None
    try:
        number = decimal.Decimal(str(raw).strip())
    except decimal.InvalidOperation:
        return None
    return number if number.is_finite() else None


def _integer(raw: Any) -> Any:
    number = _decimal(raw)
    if number is None or number != number.to_integral_value():
        return _WRONG
    return int(number)


def _number(raw: Any) -> Any:
    number = _decimal(raw)
    if number is None:
        return _WRONG
    whole = number == number.to_integral_value() and "." not in str(raw) and "e" not in str(raw).lower()
    return int(number) if whole else float(number)


_COERCE: dict[str, Callable[[Any], Any]] = {
    "string": _string,
    "boolean": _boolean,
    "date": _date,
    "integer": _integer,
    "number": _number,
}


def json_safe(value: Any) -> Any:
    """A value as JSON can hold it: datetimes and dates ISO 8601, decimals as text, bytes as hex."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict | list | tuple):
        return json.loads(json.dumps(value, default=str))
    return cell_text(value)


def json_safe_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """Bound values as the manifest keeps them."""
    return {name: json_safe(value) for name, value in values.items()}


def cell_text(value: Any) -> str:
    """How a value is written into a CSV cell (None → empty)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return format(value, "f") if value.is_finite() else str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\x" + bytes(value).hex()
    if isinstance(value, dict | list):
        return json.dumps(value, default=str, ensure_ascii=False)
    return str(value)


def column_kind(value: Any) -> str:
    """The kind of a column whose first non-NULL value is ``value``."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float | decimal.Decimal):
        return "number"
    if isinstance(value, dt.datetime):
        return "datetime"
    if isinstance(value, dt.date):
        return "date"
    return "string"


def run_query_to_csv(
    engine: sa.Engine,
    sql: str,
    values: Mapping[str, Any],
    *,
    query_id: str,
    row_limit: int,
    timeout: int,
    path: Path,
    role: str | None = None,
) -> QueryResult:
    """Run one report query read-only (as the catalog's query ``role`` of the connection when it names
    one) and stream at most ``row_limit`` rows to ``path`` (CSV with a header row). The file appears
    only when the query succeeded."""
    try:
        query = check_read_only(sql, engine.dialect.name)
    except UnsafeQueryError as exc:
        raise ReportQueryRefusedError(f"query '{query_id}' was refused: {exc}") from None
    unknown = sorted(set(query.parameters) - set(values))
    if unknown:
        raise ReportQueryRefusedError(
            f"query '{query_id}' binds unknown parameters {', '.join(':' + p for p in unknown)} "
            f"(a report query may bind: {', '.join(':' + p for p in sorted(values))})"
        )
    statement = sa.text(sql).bindparams(*(_bind(name, values[name]) for name in query.parameters))
    bound = {name: _bind_value(values[name]) for name in query.parameters}
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    try:
        with author_sql_connection(engine, timeout, role=role) as ro:
            result = ro.execute(statement, bound, execution_options={"yield_per": FETCH_ROWS})
            with partial.open("w", encoding="utf-8", newline="") as out:
                written = _write_csv(result, out, row_limit)
        partial.replace(path)
    except sa.exc.DBAPIError as exc:
        partial.unlink(missing_ok=True)
        if _timed_out(exc):
            raise ReportQueryError(
                f"query '{query_id}' ran longer than its timeout of {timeout} s and was stopped; "
                "make it cheaper or raise `timeout`"
            ) from None
        if _sqlstate(exc) == _LOCK_NOT_AVAILABLE:
            raise ReportQueryError(
                f"query '{query_id}' waited longer than {LOCK_TIMEOUT_SECONDS} s for a lock another "
                "session holds and was stopped; it is tried again"
            ) from None
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        failed = ReportQueryRefusedError if _refused_as_write(exc) else ReportQueryError
        raise failed(f"query '{query_id}' failed: {reason}") from None
    except AuthorSqlError as exc:  # a database it cannot run on, a query role that may write
        partial.unlink(missing_ok=True)
        raise ReportQueryRefusedError(f"query '{query_id}': {exc}") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    columns, count, truncated, first_row, kinds = written
    return QueryResult(
        id=query_id,
        columns=columns,
        row_count=count,
        truncated=truncated,
        path=path,
        first_row=first_row,
        column_types=kinds,
    )


def _write_csv(
    result: sa.CursorResult[Any], out: Any, row_limit: int
) -> tuple[list[str], int, bool, list[Any] | None, list[str]]:
    names = result.keys()
    columns = [str(name) for name in names]
    writer = csv.writer(out)
    writer.writerow(columns)
    kinds = [""] * len(columns)
    pending = list(range(len(columns)))  # columns whose first non-NULL value is still to come
    converted: list[int] = []  # columns whose values need cell_text (datetimes, booleans, JSON...)
    first_row: list[Any] | None = None
    count, truncated = 0, False
    for partition in result.partitions(FETCH_ROWS):
        if count >= row_limit:
            truncated = bool(partition)
            break
        rows: Sequence[Any] = partition
        if count + len(rows) > row_limit:
            rows, truncated = rows[: row_limit - count], True
        if first_row is None and rows:
            first_row = [json_safe(value) for value in rows[0]]
        if pending:
            pending = _type_columns(rows, pending, kinds, converted)
        if converted:
            rows = _converted(rows, converted)
        writer.writerows(rows)
        count += len(rows)
        if truncated:
            break
    return columns, count, truncated, first_row, kinds


def _type_columns(
    rows: Iterable[Any], pending: list[int], kinds: list[str], converted: list[int]
) -> list[int]:
    for row in rows:
        still: list[int] = []
        for index in pending:
            value = row[index]
            if value is None:
                still.append(index)
                continue
            kinds[index] = column_kind(value)
            if type(value) not in _PLAIN:
                converted.append(index)
        pending = still
        if not pending:
            break
    return pending


def _converted(rows: Sequence[Any], columns: list[int]) -> list[list[Any]]:
    out: list[list[Any]] = []
    convert: Callable[[Any], str] = cell_text
    for row in rows:
        values = list(row)
        for index in columns:
            values[index] = convert(values[index])
        out.append(values)
    return out


def _bind(name: str, value: Any) -> sa.BindParameter[Any]:
    kind: Any
    if isinstance(value, dt.datetime):
        kind = sa.DateTime(timezone=True)
    elif isinstance(value, dt.date):
        kind = sa.Date()
    elif isinstance(value, bool):
        kind = sa.Boolean()
    elif isinstance(value, int):
        kind = sa.BigInteger()
    elif isinstance(value, float):
        kind = sa.Float()
    elif isinstance(value, decimal.Decimal):
        kind = sa.Numeric()
    elif isinstance(value, str):
        kind = sa.String()
    else:
        kind = sa.types.NullType()
    return sa.bindparam(name, type_=kind)


def _bind_value(value: Any) -> Any:
    return utc(value) if isinstance(value, dt.datetime) else value


def utc(value: dt.datetime | str) -> dt.datetime:
    """An ISO string or datetime as an aware UTC datetime (naive ones are taken as UTC)."""
    moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def _timed_out(exc: sa.exc.DBAPIError) -> bool:
    return _sqlstate(exc) == "57014" or "interrupted" in str(exc.orig)


def _refused_as_write(exc: sa.exc.DBAPIError) -> bool:
    """The database stopped a write hidden from the parser (in a function, say), or a read the query
    role has no privilege for (a table outside the catalog)."""
    return _sqlstate(exc) in _REFUSED or "readonly database" in str(exc.orig)


def _sqlstate(exc: sa.exc.DBAPIError) -> str | None:
    orig = exc.orig
    code = getattr(orig, "pgcode", None) or getattr(getattr(orig, "diag", None), "sqlstate", None)
    return str(code) if code else None
