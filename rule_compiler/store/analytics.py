"""Analytics read from the rollups (:mod:`.rollups`), never from the raw automation log (ADR 0012).

An organization's overview (:func:`organization_analytics`) and one definition's detail
(:func:`definition_analytics`), over a range of whole UTC hours, bucketed by hour or by day. Each query
groups a few thousand rollup rows, however many runs there were.

What the numbers mean:

- ``runs``: finished runs (``no_match``, ``success``, ``failed``, ``partial``); ``evaluated``: the items
  their evaluations tested; ``matched``: the items that matched; ``acted``: the items the actions
  acted on (the most of any one action of the run).
- ``success_rate``, ``failure_rate``, ``partial_rate``: shares of the runs that matched something
  (``runs - no_match``; a run whose evaluation failed counts as failed); ``match_rate``: ``matched /
  evaluated``. None where the denominator is 0.
- ``p50_ms``, ``p95_ms``: percentiles read from the duration histogram (within one bin, about 19 %,
  of the exact value).
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlalchemy as sa

from rule_compiler.store.rollups import RUN_STEP, bin_value, hour_of
from rule_compiler.store.tables import (
    analytics_durations,
    analytics_errors,
    analytics_runs,
    analytics_steps,
)

__all__ = [
    "MAX_RANGE",
    "TOP_ERRORS",
    "Bucket",
    "DefinitionAnalytics",
    "DefinitionTotals",
    "ErrorCount",
    "OrganizationAnalytics",
    "RunSummary",
    "SeriesPoint",
    "StepSummary",
    "TimeRange",
    "definition_analytics",
    "organization_analytics",
    "percentile",
    "utc_of",
]

Bucket = Literal["hour", "day"]
#: The longest range one query may cover.
MAX_RANGE = dt.timedelta(days=400)
#: How many error classes a listing holds, the most frequent first.
TOP_ERRORS = 10
_FINISHED = ("no_match", "success", "failed", "partial")
_STEP_STATUSES = ("success", "failed", "skipped")


@dataclass(frozen=True)
class TimeRange:
    """Whole UTC hours from ``since`` (inclusive) to ``until`` (exclusive), bucketed by ``bucket``."""

    since: dt.datetime
    until: dt.datetime
    bucket: Bucket = "day"

    @classmethod
    def of(cls, since: dt.datetime, until: dt.datetime, bucket: Bucket = "day") -> TimeRange:
        """``since`` rounded down and ``until`` up to the hour; ValueError for an empty or too long range."""
        if since.tzinfo is None or until.tzinfo is None:
            raise ValueError("give times with a UTC offset")
        start, end = hour_of(since), hour_of(until)
        if end < until:
            end += dt.timedelta(hours=1)
        if start >= end:
            raise ValueError("`since` must be before `until`")
        if end - start > MAX_RANGE:
            raise ValueError(f"a range covers at most {MAX_RANGE.days} days")
        if bucket not in ("hour", "day"):
            raise ValueError("bucket is hour or day")
        return cls(start, end, bucket)

    def start_of(self, bucket: dt.datetime) -> dt.datetime:
        """The series bucket a rollup row's hour or day falls in (days start at 00:00 UTC)."""
        return bucket if self.bucket == "hour" else bucket.replace(hour=0)

    def segments(self, *, coarse: bool = False) -> list[tuple[str, dt.datetime, dt.datetime]]:
        """The rollup rows that cover the range: (grain, from, to). By day (or ``coarse``: for sums
        over the whole range), the whole days come from the daily rows and only the hours at either
        end from the hourly ones."""
        if self.bucket == "hour" and not coarse:
            return [("hour", self.since, self.until)]
        first = self.since.replace(hour=0)
        if first < self.since:
            first += dt.timedelta(days=1)
        last = self.until.replace(hour=0)
        if first >= last:
            return [("hour", self.since, self.until)]
        ends = [("hour", self.since, first), ("hour", last, self.until)]
        return [("day", first, last), *((g, a, b) for g, a, b in ends if a < b)]


@dataclass(frozen=True)
class RunSummary:
    """Runs by status, items, rates and run durations (see the module's docstring)."""

    runs: int = 0
    no_match: int = 0
    success: int = 0
    failed: int = 0
    partial: int = 0
    evaluated: int = 0
    matched: int = 0
    acted: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None

    @property
    def success_rate(self) -> float | None:
        return _share(self.success, self.runs - self.no_match)

    @property
    def failure_rate(self) -> float | None:
        return _share(self.failed, self.runs - self.no_match)

    @property
    def partial_rate(self) -> float | None:
        return _share(self.partial, self.runs - self.no_match)

    @property
    def match_rate(self) -> float | None:
        return _share(self.matched, self.evaluated)


@dataclass(frozen=True)
class SeriesPoint:
    """One bucket of a series."""

    start: dt.datetime
    summary: RunSummary


@dataclass(frozen=True)
class StepSummary:
    """One action's or node's results: by final status, attempts, items acted on and durations."""

    step: str
    success: int
    failed: int
    skipped: int
    attempts: int
    acted: int
    p50_ms: float | None
    p95_ms: float | None

    @property
    def results(self) -> int:
        return self.success + self.failed + self.skipped

    @property
    def retries(self) -> int:
        """Attempts beyond the first of each result."""
        return max(0, self.attempts - self.results)


@dataclass(frozen=True)
class ErrorCount:
    """An error class of the failed results, how often, and when it was first and last seen."""

    kind: str
    name: str
    step: str
    error_class: str
    count: int
    first_seen: dt.datetime
    last_seen: dt.datetime


@dataclass(frozen=True)
class DefinitionTotals:
    """One definition's summary in an organization's overview."""

    kind: str
    name: str
    summary: RunSummary


@dataclass(frozen=True)
class OrganizationAnalytics:
    """An organization's totals and series, each definition's summary and the top errors."""

    organization: str
    range: TimeRange
    summary: RunSummary
    series: list[SeriesPoint]
    definitions: list[DefinitionTotals]
    errors: list[ErrorCount]


@dataclass(frozen=True)
class DefinitionAnalytics:
    """One definition's summary, series, actions or nodes, and top errors."""

    organization: str
    kind: str
    name: str
    range: TimeRange
    summary: RunSummary
    series: list[SeriesPoint]
    steps: list[StepSummary]
    errors: list[ErrorCount]


def _share(part: int, whole: int) -> float | None:
    return None if whole <= 0 else part / whole


def percentile(histogram: Mapping[int, int], fraction: float) -> float | None:
    """The ``fraction`` percentile (ms) as ``percentile_cont`` computes it (position ``fraction * (n -
    1)``, interpolated between its neighbours), with each value taken as its bin's middle: within one
    bin of the exact value. None for an empty histogram."""
    counts = sorted((index, count) for index, count in histogram.items() if count > 0)
    total = sum(count for _, count in counts)
    if total == 0:
        return None
    position = fraction * (total - 1)
    lower = math.floor(position)

    def value_at(rank: int) -> float:
        seen = 0
        for index, count in counts:
            seen += count
            if seen > rank:
                return bin_value(index)
        return bin_value(counts[-1][0])  # pragma: no cover - rank < total always lies in a bin

    low = value_at(lower)
    return low + (position - lower) * (value_at(min(lower + 1, total - 1)) - low)


@dataclass
class _Tally:
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    histogram: dict[int, int] = field(default_factory=lambda: defaultdict(int))

    def add_runs(self, status: str, runs: int, evaluated: int, matched: int, acted: int) -> None:
        self.counts[status] += runs
        self.counts["runs"] += runs
        self.counts["evaluated"] += evaluated
        self.counts["matched"] += matched
        self.counts["acted"] += acted

    def summary(self) -> RunSummary:
        c = self.counts
        return RunSummary(
            runs=c["runs"],
            no_match=c["no_match"],
            success=c["success"],
            failed=c["failed"],
            partial=c["partial"],
            evaluated=c["evaluated"],
            matched=c["matched"],
            acted=c["acted"],
            p50_ms=percentile(self.histogram, 0.50),
            p95_ms=percentile(self.histogram, 0.95),
        )


def rows_covering(
    table: sa.Table, organization: str, span: TimeRange, *, coarse: bool = False
) -> list[sa.ColumnElement[bool]]:
    """The organization's rollup rows that cover ``span`` (see :meth:`TimeRange.segments`)."""
    segments = [
        sa.and_(table.c.grain == grain, table.c.bucket >= start, table.c.bucket < end)
        for grain, start, end in span.segments(coarse=coarse)
    ]
    return [table.c.organization == organization, sa.or_(*segments)]


def _of(table: sa.Table, kind: str, name: str) -> list[sa.ColumnElement[bool]]:
    return [table.c.kind == kind, table.c.name == name]


def _run_sums(*group: sa.ColumnElement[Any]) -> sa.Select[Any]:
    t = analytics_runs
    return sa.select(
        *group,
        t.c.status,
        sa.func.sum(t.c.runs).label("runs"),
        sa.func.sum(t.c.evaluated).label("evaluated"),
        sa.func.sum(t.c.matched).label("matched"),
        sa.func.sum(t.c.acted).label("acted"),
    ).group_by(*group, t.c.status)


def _add_runs(row: Any, *tallies: _Tally) -> None:
    """Add one grouped row of ``analytics_runs`` to each tally."""
    if row.status in _FINISHED:
        for tally in tallies:
            tally.add_runs(row.status, int(row.runs), int(row.evaluated), int(row.matched), int(row.acted))


def _errors(conn: sa.Connection, conditions: list[sa.ColumnElement[bool]]) -> list[ErrorCount]:
    t = analytics_errors
    total = sa.func.sum(t.c.count)
    rows = conn.execute(
        sa.select(
            t.c.kind,
            t.c.name,
            t.c.step,
            t.c.error_class,
            total.label("n"),
            sa.func.min(t.c.first_seen).label("first_seen"),
            sa.func.max(t.c.last_seen).label("last_seen"),
        )
        .where(*conditions)
        .group_by(t.c.kind, t.c.name, t.c.step, t.c.error_class)
        .having(total > 0)
        .order_by(total.desc(), t.c.kind, t.c.name, t.c.step, t.c.error_class)
        .limit(TOP_ERRORS)
    )
    return [
        ErrorCount(
            row.kind,
            row.name,
            row.step,
            row.error_class,
            int(row.n),
            utc_of(row.first_seen),
            utc_of(row.last_seen),
        )
        for row in rows
    ]


def raw_bucket(table: sa.Table) -> sa.ColumnElement[Any]:
    """The bucket column read as the driver gives it: a series reads thousands of rows, and it maps
    each distinct value once (:class:`BucketStarts`)."""
    return sa.type_coerce(table.c.bucket, sa.DateTime(timezone=True)).label("bucket")


class BucketStarts(dict[Any, dt.datetime]):
    """A rollup row's bucket (as the driver gives it) → the series bucket it falls in, each computed once."""

    def __init__(self, span: TimeRange) -> None:
        super().__init__()
        self.span = span

    def __call__(self, value: Any) -> dt.datetime:
        start = self.get(value)
        if start is None:
            start = self[value] = self.span.start_of(utc_of(value))
        return start


def utc_of(value: Any) -> dt.datetime:
    """An aggregate loses the column's type on SQLite (a naive datetime, or its text): UTC it."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    moment: dt.datetime = value
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def _histograms(
    conn: sa.Connection, conditions: list[sa.ColumnElement[bool]], *group: sa.ColumnElement[Any]
) -> list[Any]:
    d = analytics_durations
    total = sa.func.sum(d.c.count).label("n")
    # all(): one fetchall from the driver, not a fetchone per row (thousands of rows by the hour)
    return list(
        conn.execute(sa.select(*group, d.c.bin, total).where(*conditions).group_by(*group, d.c.bin)).all()
    )


def organization_analytics(conn: sa.Connection, organization: str, span: TimeRange) -> OrganizationAnalytics:
    """An organization's totals, series, per-definition summaries and top errors: four grouped reads of
    the rollups and the top errors."""
    runs, durations = analytics_runs, analytics_durations
    per_definition: dict[tuple[str, str], _Tally] = defaultdict(_Tally)
    per_bucket: dict[dt.datetime, _Tally] = defaultdict(_Tally)
    total, starts = _Tally(), BucketStarts(span)
    # sums over the whole range read the daily rows where they can; the series reads its own buckets
    whole = rows_covering(runs, organization, span, coarse=True)
    for row in conn.execute(_run_sums(runs.c.kind, runs.c.name).where(*whole)):
        _add_runs(row, per_definition[(row.kind, row.name)], total)
    for row in conn.execute(_run_sums(raw_bucket(runs)).where(*rows_covering(runs, organization, span))):
        _add_runs(row, per_bucket[starts(row.bucket)])
    run_level = durations.c.step == RUN_STEP
    for row in _histograms(
        conn,
        [*rows_covering(durations, organization, span, coarse=True), run_level],
        durations.c.kind,
        durations.c.name,
    ):
        per_definition[(row.kind, row.name)].histogram[row.bin] += int(row.n)
        total.histogram[row.bin] += int(row.n)
    for row in _histograms(
        conn, [*rows_covering(durations, organization, span), run_level], raw_bucket(durations)
    ):
        per_bucket[starts(row.bucket)].histogram[row.bin] += int(row.n)
    return OrganizationAnalytics(
        organization=organization,
        range=span,
        summary=total.summary(),
        series=[SeriesPoint(start, per_bucket[start].summary()) for start in sorted(per_bucket)],
        definitions=[
            DefinitionTotals(kind, name, per_definition[(kind, name)].summary())
            for kind, name in sorted(per_definition)
        ],
        errors=_errors(conn, rows_covering(analytics_errors, organization, span, coarse=True)),
    )


def definition_analytics(
    conn: sa.Connection, organization: str, kind: str, name: str, span: TimeRange
) -> DefinitionAnalytics:
    """One definition's summary, series, steps and top errors (zeros when it never ran in the range)."""
    runs, steps, durations = analytics_runs, analytics_steps, analytics_durations
    per_bucket: dict[dt.datetime, _Tally] = defaultdict(_Tally)
    total, starts = _Tally(), BucketStarts(span)
    for row in conn.execute(
        _run_sums(raw_bucket(runs)).where(*rows_covering(runs, organization, span), *_of(runs, kind, name))
    ):
        _add_runs(row, per_bucket[starts(row.bucket)], total)
    mine = [*rows_covering(durations, organization, span), *_of(durations, kind, name)]
    for row in _histograms(conn, [*mine, durations.c.step == RUN_STEP], raw_bucket(durations)):
        per_bucket[starts(row.bucket)].histogram[row.bin] += int(row.n)
        total.histogram[row.bin] += int(row.n)
    step_histograms: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    whole = [*rows_covering(durations, organization, span, coarse=True), *_of(durations, kind, name)]
    for row in _histograms(conn, [*whole, durations.c.step != RUN_STEP], durations.c.step):
        step_histograms[row.step][row.bin] += int(row.n)
    step_counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    step_rows = conn.execute(
        sa.select(
            steps.c.step,
            steps.c.status,
            sa.func.sum(steps.c.results).label("results"),
            sa.func.sum(steps.c.attempts).label("attempts"),
            sa.func.sum(steps.c.acted).label("acted"),
        )
        .where(*rows_covering(steps, organization, span, coarse=True), *_of(steps, kind, name))
        .group_by(steps.c.step, steps.c.status)
    )
    for row in step_rows:
        counts = step_counts[row.step]
        if row.status in _STEP_STATUSES:
            counts[row.status] += int(row.results)
        counts["attempts"] += int(row.attempts)
        counts["acted"] += int(row.acted)
    return DefinitionAnalytics(
        organization=organization,
        kind=kind,
        name=name,
        range=span,
        summary=total.summary(),
        series=[SeriesPoint(start, per_bucket[start].summary()) for start in sorted(per_bucket)],
        steps=[
            StepSummary(
                step=step,
                success=counts["success"],
                failed=counts["failed"],
                skipped=counts["skipped"],
                attempts=counts["attempts"],
                acted=counts["acted"],
                p50_ms=percentile(step_histograms[step], 0.50),
                p95_ms=percentile(step_histograms[step], 0.95),
            )
            for step, counts in sorted(step_counts.items())
        ],
        errors=_errors(
            conn,
            [
                *rows_covering(analytics_errors, organization, span, coarse=True),
                *_of(analytics_errors, kind, name),
            ],
        ),
    )
