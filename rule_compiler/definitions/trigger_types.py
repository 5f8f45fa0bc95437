"""Triggers: what starts a rule's run (``event``, ``schedule``, ``data`` or ``manual``)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter
from pydantic import AfterValidator, Discriminator, Field, Tag, WithJsonSchema
from pydantic_core import PydanticCustomError

from rule_compiler.definitions.common import Identifier, StrictModel, tag_of

EventOperation = Literal["created", "updated", "deleted"]
TriggerType = Literal["event", "schedule", "data", "manual"]
TRIGGER_TYPES: tuple[str, ...] = get_args(TriggerType)
_CRON_PROBE_START = dt.datetime(2026, 1, 1)  # fixed: the same verdict on every run


def _check_cron(value: str) -> str:
    fields = value.split()
    if len(fields) != 5 or not croniter.is_valid(value):
        raise PydanticCustomError(
            "cron",
            "'{value}' is not a valid cron expression: give five fields 'minute hour day-of-month month "
            "day-of-week' with minute 0-59 and hour 0-23 (for example '0 8 * * 1-5')",
            {"value": value},
        )
    try:  # "0 0 31 2 *" is well formed, yet no day matches it (croniter looks decades ahead)
        croniter(value, _CRON_PROBE_START).get_next(dt.datetime)
    except CroniterBadDateError:
        raise PydanticCustomError(
            "cron_never_fires",
            "'{value}' never fires: no date matches its day-of-month and month (such as 31 February); "
            "choose days that exist in those months",
            {"value": value},
        ) from None
    return value


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise PydanticCustomError(
            "timezone",
            "'{value}' is not a known time zone: use an IANA name such as 'UTC' or 'Europe/Berlin'",
            {"value": value},
        ) from None
    return value


Cron = Annotated[
    str, AfterValidator(_check_cron), WithJsonSchema({"type": "string", "examples": ["0 8 * * 1-5"]})
]
TimeZone = Annotated[
    str, AfterValidator(_check_timezone), WithJsonSchema({"type": "string", "examples": ["UTC"]})
]


class Target(StrictModel):
    """The table whose rows a scheduled or manual rule selects with its conditions; actions run per row."""

    connection: Identifier
    table: Identifier


class EventTrigger(StrictModel):
    """Fires when rows of ``table`` are created, updated or deleted."""

    type: Literal["event"]
    connection: Identifier
    table: Identifier
    events: list[EventOperation] = Field(min_length=1, max_length=3)
    fields: list[Identifier] | None = Field(default=None, min_length=1)


class ScheduleTrigger(StrictModel):
    """Fires on a cron schedule in a time zone."""

    type: Literal["schedule"]
    cron: Cron
    timezone: TimeZone = "UTC"
    target: Target | None = None


class DataCheck(StrictModel):
    """The test applied to a data trigger's query result."""

    operator: Literal["gt", "gte", "lt", "lte", "equals", "not_equals", "returns_rows"]
    value: float | int | str | bool | None = None


class DataTrigger(StrictModel):
    """Fires when a read-only query's result passes ``check``, polled on a schedule."""

    type: Literal["data"]
    connection: Identifier
    sql: str = Field(min_length=1, max_length=20_000)
    check: DataCheck
    schedule: Cron
    timezone: TimeZone = "UTC"
    poke_interval: int = Field(default=60, ge=5, le=86_400)
    timeout: int = Field(default=3_600, ge=10, le=7 * 86_400)


class ManualTrigger(StrictModel):
    """Fires only when someone triggers it (REST, CLI or the Airflow UI)."""

    type: Literal["manual"]
    target: Target | None = None


def _trigger_kind(value: Any) -> str | None:
    return tag_of(value, "type", "#")


Trigger = Annotated[
    (
        Annotated[EventTrigger, Tag("#event")]
        | Annotated[ScheduleTrigger, Tag("#schedule")]
        | Annotated[DataTrigger, Tag("#data")]
        | Annotated[ManualTrigger, Tag("#manual")]
    ),
    Discriminator(_trigger_kind),
]
