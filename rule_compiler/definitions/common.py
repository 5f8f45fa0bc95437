"""Building blocks shared by every definition model: the strict base model and checked name types."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    StringConstraints,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

SLUG_RE = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
ACTION_ID_RE = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")
IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_NAME_LENGTH = 63
FIELD_PATH_SEPARATOR = "__"
MAX_FIELD_PATH_HOPS = 4
MAX_TITLE_LENGTH = 100
#: What a title may not hold: C0 and C1 control characters (newlines, tabs, escapes), the line and
#: paragraph separators, and the bidirectional overrides and isolates (text shown in another order than
#: it is written). Written with ``\u`` escapes, so the same text is a Python and an ECMA-262 pattern.
TITLE_PATTERN = r"^[^\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]*$"
_TITLE_RE = re.compile(TITLE_PATTERN)


class StrictModel(BaseModel):
    """Base of every definition model: unknown keys are errors and instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _check_slug(value: str) -> str:
    if len(value) > MAX_NAME_LENGTH or not SLUG_RE.match(value):
        raise PydanticCustomError(
            "slug",
            "'{value}' is not a valid name: use lowercase letters, digits and single hyphens, starting "
            "with a letter, at most 63 characters (for example 'escalate-vip-orders')",
            {"value": value},
        )
    return value


def _check_action_id(value: str) -> str:
    if len(value) > MAX_NAME_LENGTH or not ACTION_ID_RE.match(value):
        raise PydanticCustomError(
            "action_id",
            "'{value}' is not a valid action id: use lowercase letters, digits, '-' or '_', starting "
            "with a letter, at most 63 characters (for example 'tell-manager')",
            {"value": value},
        )
    return value


def _check_identifier(value: str) -> str:
    if len(value) > MAX_NAME_LENGTH or not IDENTIFIER_RE.match(value):
        raise PydanticCustomError(
            "identifier",
            "'{value}' is not a valid identifier: use letters, digits and '_', starting with a letter "
            "or '_', at most 63 characters",
            {"value": value},
        )
    return value


def _check_title(value: str) -> str:
    if not value:
        raise PydanticCustomError(
            "title", "a title may not be empty: leave `title` out to show the name instead", {}
        )
    if len(value) > MAX_TITLE_LENGTH:
        raise PydanticCustomError(
            "title",
            "a title is at most {limit} characters; this one has {length}",
            {"limit": MAX_TITLE_LENGTH, "length": len(value)},
        )
    if not _TITLE_RE.fullmatch(value):
        found = next(char for char in value if not _TITLE_RE.fullmatch(char))
        raise PydanticCustomError(
            "title",
            "a title is one line of text: no control characters (newlines, tabs), line separators or "
            "bidirectional overrides (found {code})",
            {"code": f"U+{ord(found):04X}"},
        )
    return value


def is_none(value: object) -> bool:
    """For ``Field(exclude_if=...)``: an optional key left out stays out of dumps (and content hashes)."""
    return value is None


def _check_field_path(value: str) -> str:
    hops = value.split(FIELD_PATH_SEPARATOR)
    if (
        len(value) > 255
        or len(hops) > MAX_FIELD_PATH_HOPS + 1
        or not all(IDENTIFIER_RE.match(hop) and len(hop) <= MAX_NAME_LENGTH for hop in hops)
    ):
        raise PydanticCustomError(
            "field_path",
            "'{value}' is not a valid field: name a column ('total') or a path through foreign keys "
            "joined by '__' ('customer__tier'), using letters, digits and single '_', at most 4 hops",
            {"value": value},
        )
    return value


Slug = Annotated[
    str,
    AfterValidator(_check_slug),
    WithJsonSchema({"type": "string", "pattern": SLUG_RE.pattern, "maxLength": MAX_NAME_LENGTH}),
]
ActionId = Annotated[
    str,
    AfterValidator(_check_action_id),
    WithJsonSchema({"type": "string", "pattern": ACTION_ID_RE.pattern, "maxLength": MAX_NAME_LENGTH}),
]
Identifier = Annotated[
    str,
    AfterValidator(_check_identifier),
    WithJsonSchema({"type": "string", "pattern": IDENTIFIER_RE.pattern, "maxLength": MAX_NAME_LENGTH}),
]
#: Values for a report's declared parameters, by name (``generate_report``, a workflow's report node).
ReportArguments = Annotated[dict[Identifier, JsonValue], Field(max_length=50)]
#: A human title for the UI (``Escalate VIP orders``): one line, surrounding spaces dropped, 1-100 chars.
Title = Annotated[
    str,
    StringConstraints(strip_whitespace=True),
    AfterValidator(_check_title),
    WithJsonSchema(
        {"type": "string", "minLength": 1, "maxLength": MAX_TITLE_LENGTH, "pattern": TITLE_PATTERN}
    ),
]
FieldPath = Annotated[
    str,
    AfterValidator(_check_field_path),
    WithJsonSchema({"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]*$", "maxLength": 255}),
]


def tag_of(value: Any, key: str, prefix: str) -> str | None:
    """The union tag for a raw mapping (``{type: x}`` → ``#x``) or an already built model."""
    if isinstance(value, dict):
        kind = value.get(key)
        return f"{prefix}{kind}" if isinstance(kind, str) else None
    kind = getattr(value, key, None)
    return f"{prefix}{kind}" if isinstance(kind, str) else None


#: The longest failure-rate window: a week (the rate is summed from hourly rollups).
MAX_ALERT_WINDOW_HOURS = 168
WINDOW_PATTERN = r"^[1-9][0-9]{0,2}[hd]$"


def window_hours(window: str) -> int:
    """Hours of a window written ``6h`` or ``1d``."""
    return int(window[:-1]) * (24 if window.endswith("d") else 1)


def _check_window(value: str) -> str:
    if not 1 <= window_hours(value) <= MAX_ALERT_WINDOW_HOURS:
        raise PydanticCustomError("alert_window", "a window is 1h to 7d (168h)")
    return value


class FailureAlerts(StrictModel):
    """Notify the owner once per window when the failure rate of the runs that matched something
    reaches ``failure_rate`` over at least ``min_runs`` such runs (windows are whole hours, UTC)."""

    failure_rate: float = Field(gt=0, le=1, description="the share of failed runs that alerts (0.5: half)")
    window: Annotated[str, StringConstraints(pattern=WINDOW_PATTERN), AfterValidator(_check_window)] = Field(
        default="1h", description="the window, whole hours or days: 1h to 7d"
    )
    min_runs: int = Field(default=5, ge=1, le=1_000_000, description="fewer runs in the window: no alert")
