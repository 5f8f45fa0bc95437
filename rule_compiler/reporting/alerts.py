"""Alert mode: does the check hold on a query's result?

``gt``/``gte``/``lt``/``lte``/``equals``/``not_equals`` compare ``value`` with ``column`` (default:
the first) of the first row; no row or a NULL never holds. ``not_empty`` holds when the query
returned a row. ``changed`` holds when the result differs from the previous run's (its digest is not
``previous_digest``); on the first run (no previous digest) it holds.

The digest is the SHA-256 of the result file (header and rows as written), so the next run can tell
whether anything changed without keeping the rows.
"""

from __future__ import annotations

import decimal
import hashlib
import operator as op
from collections.abc import Callable, Mapping
from typing import Any

from rule_compiler.reporting.report_errors import ReportAlertError
from rule_compiler.reporting.workdir import QueryResult

_ORDER: dict[str, tuple[Callable[[Any, Any], bool], str]] = {
    "gt": (op.gt, ">"),
    "gte": (op.ge, ">="),
    "lt": (op.lt, "<"),
    "lte": (op.le, "<="),
}
_CHUNK = 1 << 20


def result_digest(result: QueryResult) -> str:
    """SHA-256 (hex) of the query's result file, read in chunks."""
    digest = hashlib.sha256()
    with open(result.path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def alert_holds(
    check: Mapping[str, Any], result: QueryResult, previous_digest: str | None
) -> tuple[bool, str, str]:
    """(holds, digest of the result, a sentence saying why) for the alert ``check`` on ``result``."""
    operator = str(check["operator"])
    digest = result_digest(result)
    where = f"query '{result.id}'"
    if operator == "not_empty":
        rows = (
            f"{result.row_count}{'+' if result.truncated else ''} row{'s' if result.row_count != 1 else ''}"
        )
        if result.row_count > 0:
            return True, digest, f"{where} returned {rows}"
        return False, digest, f"{where} returned no rows"
    if operator == "changed":
        if previous_digest is None:
            return True, digest, f"{where}: first run, nothing to compare with"
        if digest != previous_digest:
            return True, digest, f"{where}: the result changed since the previous run"
        return False, digest, f"{where}: the result is the same as in the previous run"
    if operator not in _ORDER and operator not in ("equals", "not_equals"):
        raise ReportAlertError(f"unknown alert operator {operator!r}")
    column, index = _column(check, result)
    expected = check.get("value")
    if not result.first_row:
        return False, digest, f"{where} returned no rows"
    actual = result.first_row[index]
    label = f"{result.id}.{column}"
    if actual is None or expected is None:
        return False, digest, f"{label} is NULL"
    kind = result.column_types[index] if index < len(result.column_types) else ""
    if operator in _ORDER:
        compare, symbol = _ORDER[operator]
        holds = compare(_number(actual, kind, label, operator), _number(expected, "", "value", operator))
        verdict = symbol if holds else f"is not {symbol}"
        return holds, digest, f"{label} = {actual} {verdict} {expected}"
    equal = _equal(actual, expected, kind)
    holds = equal if operator == "equals" else not equal
    symbol = "=" if equal else "≠"
    return holds, digest, f"{label} = {actual} {symbol} {expected}"


def _column(check: Mapping[str, Any], result: QueryResult) -> tuple[str, int]:
    if not result.columns:
        raise ReportAlertError(f"query '{result.id}' returned no columns to check")
    name = check.get("column") or result.columns[0]
    if name not in result.columns:
        raise ReportAlertError(
            f"the alert checks column '{name}', but query '{result.id}' returned {', '.join(result.columns)}"
        )
    return str(name), result.columns.index(name)


def _number(value: Any, kind: str, what: str, operator: str) -> decimal.Decimal:
    numeric_text = isinstance(value, str) and kind in ("integer", "number", "")
    if isinstance(value, bool) or not (isinstance(value, int | float | decimal.Decimal) or numeric_text):
        raise ReportAlertError(
            f"{operator} compares numbers, but {what} is {value!r}; make the query return a number "
            "or use equals"
        )
    try:
        number = decimal.Decimal(str(value))
    except decimal.InvalidOperation:
        raise ReportAlertError(f"{operator} compares numbers, but {what} is {value!r}") from None
    return number


def _equal(actual: Any, expected: Any, kind: str) -> bool:
    if isinstance(expected, bool):
        if isinstance(actual, bool):
            return actual is expected
        return str(actual).lower() in ({"true", "1"} if expected else {"false", "0"})
    if isinstance(expected, int | float) and kind in ("integer", "number", ""):
        try:
            return decimal.Decimal(str(actual)) == decimal.Decimal(str(expected))
        except decimal.InvalidOperation:
            return False
    return str(actual) == str(expected)
