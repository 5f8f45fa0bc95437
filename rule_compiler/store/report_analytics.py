"""Report analytics: runs by status, durations, sizes and deliveries per report, read from
``analytics_reports`` and ``analytics_report_deliveries`` (migration 0012), never from the raw rows.

Runs count by the hour or day they started, deliveries by when they were created (a delivery is
counted under its current status: ``sent``, ``failed``, ``retrying`` or ``sending``).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

import sqlalchemy as sa

from rule_compiler.store.analytics import BucketStarts, TimeRange, percentile, raw_bucket, rows_covering
from rule_compiler.store.analytics_tables import analytics_report_deliveries, analytics_reports

__all__ = ["ReportAnalytics", "ReportPoint", "ReportSummary", "report_analytics"]


@dataclass
class ReportSummary:
    """Runs by status with their durations and bytes, and deliveries by (type, status)."""

    by_status: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    histogram: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    bytes: int = 0
    deliveries_by: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    attempts: int = 0

    @property
    def runs(self) -> int:
        return sum(self.by_status.values())

    @property
    def p50_ms(self) -> float | None:
        return percentile(self.histogram, 0.50)

    @property
    def p95_ms(self) -> float | None:
        return percentile(self.histogram, 0.95)

    @property
    def bytes_per_run(self) -> float | None:
        return self.bytes / self.runs if self.runs else None

    def deliveries(self, status: str | None = None) -> int:
        return sum(n for (_, s), n in self.deliveries_by.items() if status is None or s == status)

    def add_runs(self, status: str, bin_: int, runs: int, size: int) -> None:
        self.by_status[status] += runs
        self.histogram[bin_] += runs
        self.bytes += size

    def add_deliveries(self, type_: str, status: str, deliveries: int, attempts: int) -> None:
        self.deliveries_by[(type_, status)] += deliveries
        self.attempts += attempts


@dataclass(frozen=True)
class ReportPoint:
    start: dt.datetime
    summary: ReportSummary


@dataclass(frozen=True)
class ReportAnalytics:
    """An organization's report runs and deliveries over a range: the total, per report, a series."""

    organization: str
    range: TimeRange
    summary: ReportSummary
    reports: dict[str, ReportSummary]
    series: list[ReportPoint]


def report_analytics(
    conn: sa.Connection, organization: str, span: TimeRange, report: str | None = None
) -> ReportAnalytics:
    """Four grouped reads of the rollups: per report over the range (daily rows where whole days are
    covered) and by bucket, for runs and for deliveries; ``report``: that report only."""
    runs, deliveries = analytics_reports, analytics_report_deliveries
    total = ReportSummary()
    per_report: dict[str, ReportSummary] = defaultdict(ReportSummary)
    starts = BucketStarts(span)
    points: dict[dt.datetime, ReportSummary] = defaultdict(ReportSummary)

    def only(table: sa.Table) -> list[sa.ColumnElement[bool]]:
        return [] if report is None else [table.c.report == report]

    run_sums = (sa.func.sum(runs.c.runs).label("runs"), sa.func.sum(runs.c.bytes).label("size"))
    for row in conn.execute(
        sa.select(runs.c.report, runs.c.status, runs.c.bin, *run_sums)
        .where(*rows_covering(runs, organization, span, coarse=True), *only(runs))
        .group_by(runs.c.report, runs.c.status, runs.c.bin)
    ).all():
        for summary in (total, per_report[row.report]):
            summary.add_runs(row.status, row.bin, int(row.runs), int(row.size))
    for point in conn.execute(
        sa.select(raw_bucket(runs), runs.c.status, runs.c.bin, *run_sums)
        .where(*rows_covering(runs, organization, span), *only(runs))
        .group_by(runs.c.bucket, runs.c.status, runs.c.bin)
    ).all():
        points[starts(point.bucket)].add_runs(point.status, point.bin, int(point.runs), int(point.size))
    sent_sums = (
        sa.func.sum(deliveries.c.deliveries).label("n"),
        sa.func.sum(deliveries.c.attempts).label("tries"),
    )
    for row in conn.execute(
        sa.select(deliveries.c.report, deliveries.c.type, deliveries.c.status, *sent_sums)
        .where(*rows_covering(deliveries, organization, span, coarse=True), *only(deliveries))
        .group_by(deliveries.c.report, deliveries.c.type, deliveries.c.status)
    ).all():
        for summary in (total, per_report[row.report]):
            summary.add_deliveries(row.type, row.status, int(row.n), int(row.tries))
    for point in conn.execute(
        sa.select(raw_bucket(deliveries), deliveries.c.type, deliveries.c.status, *sent_sums)
        .where(*rows_covering(deliveries, organization, span), *only(deliveries))
        .group_by(deliveries.c.bucket, deliveries.c.type, deliveries.c.status)
    ).all():
        points[starts(point.bucket)].add_deliveries(point.type, point.status, int(point.n), int(point.tries))
    return ReportAnalytics(
        organization=organization,
        range=span,
        summary=total,
        reports=dict(sorted(per_report.items())),
        series=[ReportPoint(start, points[start]) for start in sorted(points)],
    )
