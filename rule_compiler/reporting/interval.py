"""The data interval a report run reads, computed like Airflow's ``CronDataIntervalTimetable``.

A scheduled run fires at a cron time and reads the interval from the previous cron time to that
one. For a preview on a date (``rule-compiler report run --date``), the interval is the last one
complete by the end of that date in the report's time zone — what a run triggered at the midnight
after the date reads (``CronDataIntervalTimetable.infer_manual_data_interval``): for a weekly Monday
07:00 report and any date from Monday to Sunday, the week ending that Monday at 07:00. The logical
date is the interval's start, as Airflow sets it for data-interval timetables.

:func:`period_text` says a run's interval in words, in the report's time zone (the xlsx ``About`` sheet,
the html and pdf templates' ``run.period`` and ``report run`` show it).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from croniter import croniter

from rule_compiler.reporting.workdir import Manifest


@dataclass(frozen=True)
class DataInterval:
    """Aware UTC datetimes."""

    start: dt.datetime
    end: dt.datetime

    @property
    def logical_date(self) -> dt.datetime:
        return self.start


def interval_for_date(cron: str, timezone: str, day: dt.date) -> DataInterval:
    """The last complete interval of ``cron`` (in ``timezone``) by the end of ``day`` there."""
    zone = ZoneInfo(timezone)
    midnight_after = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=zone)
    previous = _prev(cron, zone, midnight_after)
    on_boundary = _next(cron, zone, previous) == midnight_after
    end = midnight_after.astimezone(dt.UTC) if on_boundary else previous
    return DataInterval(start=_prev(cron, zone, end), end=end)


def _next(cron: str, zone: ZoneInfo, moment: dt.datetime) -> dt.datetime:
    naive = moment.astimezone(zone).replace(tzinfo=None)
    scheduled: dt.datetime = croniter(cron, naive).get_next(dt.datetime)
    return scheduled.replace(tzinfo=zone).astimezone(dt.UTC)


def _prev(cron: str, zone: ZoneInfo, moment: dt.datetime) -> dt.datetime:
    naive = moment.astimezone(zone).replace(tzinfo=None)
    scheduled: dt.datetime = croniter(cron, naive).get_prev(dt.datetime)
    return scheduled.replace(tzinfo=zone).astimezone(dt.UTC)


def period_text(manifest: Manifest) -> str:
    """``9 Nov 2026, 07:00 → 16 Nov 2026, 07:00 (Europe/Berlin)`` in the report's time zone."""
    zone = ZoneInfo(manifest.timezone)
    start = dt.datetime.fromisoformat(manifest.interval_start).astimezone(zone)
    end = dt.datetime.fromisoformat(manifest.interval_end).astimezone(zone)

    def when(moment: dt.datetime) -> str:
        return f"{moment.day} {moment:%b %Y, %H:%M}"

    return f"{when(start)} → {when(end)} ({manifest.timezone})"
