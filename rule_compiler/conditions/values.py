"""Value kinds: how a record value and an operand are brought to one comparable form.

Every leaf compares in one *kind*, taken from the column type when the caller knows it, else
inferred from the operand (:func:`infer_kind`):

========== ======================= ==========================================================
kind       column types            a record value becomes
========== ======================= ==========================================================
number     integer, numeric        ``int`` or ``Decimal`` (a float via its shortest repr, so
                                   ``0.1`` equals ``Decimal('0.1')``); NaN, bools and text: no
temporal   timestamp, date         an aware ``datetime``: naive means UTC, a ``date`` is its
                                   midnight UTC, ISO 8601 text is parsed
text       text                    itself when it is a ``str``
boolean    boolean                 itself when a ``bool``; the integers 0 and 1 (SQLite)
raw        json, other             floats as in *number*, naive datetimes as UTC, else as is
========== ======================= ==========================================================

A value that does not fit its kind becomes :data:`BAD`, and the condition is false: a run-time type
mismatch never raises.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Final, Literal

Kind = Literal["number", "temporal", "text", "boolean", "raw"]


class _Bad:
    __slots__ = ()

    def __repr__(self) -> str:
        return "BAD"


#: A value that cannot be brought to the leaf's kind.
BAD: Final = _Bad()

KIND_OF_COLUMN_TYPE: Mapping[str, Kind] = {
    "integer": "number",
    "numeric": "number",
    "timestamp": "temporal",
    "date": "temporal",
    "text": "text",
    "boolean": "boolean",
    "json": "raw",
    "other": "raw",
}
KIND_NOUN: Mapping[Kind, str] = {
    "number": "a number",
    "temporal": "a date or date-time",
    "text": "text",
    "boolean": "true or false",
    "raw": "a value",
}

#: ISO 8601 dates and date-times as authors write them: ``2024-05-01``, ``2024-05-01T09:00:00Z``.
ISO_TEMPORAL_RE = re.compile(
    r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?$"
)
ISO_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MAX_TEMPORAL_TEXT = 64


def to_number(value: Any) -> Any:
    cls = value.__class__
    if cls is int:
        return value
    if cls is Decimal:
        return BAD if value.is_nan() else value
    if cls is float:
        return BAD if math.isnan(value) else Decimal(repr(value))
    return _to_number_subclass(value)


def _to_number_subclass(value: Any) -> Any:
    """Subclasses (``IntEnum``...); ``bool`` is not a number here."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return BAD
    if isinstance(value, int):
        return int(value)
    return to_number(float(value) if isinstance(value, float) else Decimal(value))


def to_temporal(value: Any) -> Any:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str) and len(value) <= _MAX_TEMPORAL_TEXT:
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            return BAD
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    return BAD


def to_text(value: Any) -> Any:
    return value if isinstance(value, str) else BAD


def to_boolean(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    return BAD


def to_raw(value: Any) -> Any:
    cls = value.__class__
    if cls is float:
        return BAD if math.isnan(value) else Decimal(repr(value))
    if cls is datetime and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


COERCE: Mapping[Kind, Callable[[Any], Any]] = {
    "number": to_number,
    "temporal": to_temporal,
    "text": to_text,
    "boolean": to_boolean,
    "raw": to_raw,
}
#: Classes a kind takes unchanged: the evaluator's fast path skips the coercion call for them.
FAST_CLASSES: Mapping[Kind, frozenset[type]] = {
    "number": frozenset({int, Decimal}),
    "temporal": frozenset(),
    "text": frozenset({str}),
    "boolean": frozenset({bool}),
    "raw": frozenset({str, int, bool, Decimal}),
}


def kind_of_operand(value: Any) -> Kind:
    """The kind an operand written in a definition suggests."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float | Decimal):
        return "number"
    if isinstance(value, datetime | date):
        return "temporal"
    if isinstance(value, str):
        return "temporal" if ISO_TEMPORAL_RE.match(value) else "text"
    return "raw"


def infer_kind(operand: Any) -> Kind:
    """The kind of a scalar operand, or of a list whose items all suggest the same kind."""
    if isinstance(operand, list | tuple):
        kinds = {kind_of_operand(item) for item in operand}
        return kinds.pop() if len(kinds) == 1 else "raw"
    return kind_of_operand(operand)


def json_safe(value: Any, *, limit: int = 500) -> Any:
    """``value`` as JSON-safe data for traces: dates/decimals as ISO/decimal strings, long text cut."""
    if isinstance(value, Mapping):
        return {str(key): json_safe(item, limit=limit) for key, item in list(value.items())[:100]}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=repr) if isinstance(value, set | frozenset) else value
        return [json_safe(item, limit=limit) for item in list(items)[:100]]
    return _json_scalar(value, limit)


def _json_scalar(value: Any, limit: int) -> Any:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, datetime | date):
        text = value.isoformat()
    elif isinstance(value, Decimal | timedelta):
        text = str(value)
    elif isinstance(value, re.Pattern) or type(value).__name__ == "_Regexp":  # re or RE2 compiled pattern
        text = value.pattern
    else:
        text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + f"… ({len(text)} characters)"
