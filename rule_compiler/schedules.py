"""Cron schedules in a time zone: the next run times, and the shortest gap between two runs.

Both follow the same rules as Airflow's ``CronTriggerTimetable`` the compiler renders: cron fields
are read in the rule's time zone (a 09:00 schedule stays at 09:00 local across DST changes).
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import os
from zoneinfo import ZoneInfo

from croniter import CroniterBadDateError, croniter

#: Environment variable: the shortest interval (seconds) an admin lets a schedule run at.
MIN_INTERVAL_ENV = "AUTOMATION_MIN_SCHEDULE_INTERVAL"
DEFAULT_MIN_INTERVAL = dt.timedelta(minutes=1)
MAX_PREVIEW = 100
# How far a walk looks: enough runs for the minute/hour fields to repeat across several days, and
# enough days for day-of-month and weekday patterns to show.
_SCAN_FIRES = 400
_SCAN_DAYS = 62
_SCAN_START = dt.datetime(2026, 1, 1)  # the window holds February


def next_runs(cron: str, timezone: str, *, after: dt.datetime, count: int = 5) -> list[dt.datetime]:
    """The next ``count`` (≤ 100) run times after ``after``, as aware datetimes in ``timezone``.

    Fewer (none) when the cron stops matching: one that never fires (``0 0 31 2 *``, refused at
    registration but perhaps stored before) has no next run rather than an error.
    """
    zone = ZoneInfo(timezone)
    start = after.astimezone(zone) if after.tzinfo else after.replace(tzinfo=zone)
    schedule = croniter(cron, start)
    runs: list[dt.datetime] = []
    for _ in range(max(0, min(count, MAX_PREVIEW))):
        try:
            runs.append(schedule.get_next(dt.datetime))
        except CroniterBadDateError:
            break
    return runs


@functools.lru_cache(maxsize=1_024)
def shortest_interval(cron: str) -> dt.timedelta:
    """The smallest gap between two consecutive runs of ``cron`` (DST shifts aside).

    Computed from the expanded minute and hour fields; only when the day fields restrict the days
    and the gap across midnight could be the smallest does it walk about two months of runs.
    """
    minutes, hours, days, months, weekdays = croniter(cron).expanded
    day_minutes = sorted(
        int(h) * 60 + int(m)
        for h in (range(24) if hours == ["*"] else hours)
        for m in (range(60) if minutes == ["*"] else minutes)
    )
    within_day = [b - a for a, b in itertools.pairwise(day_minutes)]
    across_midnight = day_minutes[0] + 1_440 - day_minutes[-1]  # if the next day runs too
    if days == ["*"] and months == ["*"] and weekdays == ["*"]:
        return dt.timedelta(minutes=min([*within_day, across_midnight]))
    if within_day and min(within_day) <= across_midnight:
        return dt.timedelta(minutes=min(within_day))
    return _walked_interval(cron)


def _walked_interval(cron: str) -> dt.timedelta:
    # Walk in UTC so DST changes do not show up as gaps; a fixed start keeps validation deterministic.
    start = _SCAN_START.replace(tzinfo=dt.UTC)
    end = start + dt.timedelta(days=_SCAN_DAYS)
    schedule = croniter(cron, start)
    previous = schedule.get_next(dt.datetime)
    shortest = dt.timedelta(days=366)
    for _ in range(_SCAN_FIRES):
        current = schedule.get_next(dt.datetime)
        shortest = min(shortest, current - previous)
        if shortest <= DEFAULT_MIN_INTERVAL or current > end:
            break
        previous = current
    return shortest


def minimum_interval(value: str | None = None) -> dt.timedelta:
    """The admin's minimum (``AUTOMATION_MIN_SCHEDULE_INTERVAL`` seconds), one minute by default."""
    raw = value if value is not None else os.environ.get(MIN_INTERVAL_ENV, "")
    if not raw.strip():
        return DEFAULT_MIN_INTERVAL
    try:
        seconds = int(raw)
    except ValueError:
        raise ValueError(f"{MIN_INTERVAL_ENV} must be a number of seconds, not {raw!r}") from None
    return max(dt.timedelta(seconds=seconds), DEFAULT_MIN_INTERVAL)


def describe(interval: dt.timedelta) -> str:
    """``5 min``, ``2 h``, ``1 day``: a gap for humans."""
    seconds = int(interval.total_seconds())
    for unit, size in (("day", 86_400), ("h", 3_600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if unit == 'day' and count != 1 else ''}"
    return f"{seconds} s"
