"""Webhook delivery analytics: success rate, latency and retries per rule or workflow action, read from
``analytics_webhooks`` (migration 0011), never from the delivery rows.

An attempt ends ``delivered``, ``retrying`` (it will be tried again) or ``failed`` (given up; a
redelivery may still deliver it). The success rate is the delivered attempts over the ones that ended
a delivery (delivered or failed); the retries are the attempts that ended ``retrying``; the latency
percentiles are over every attempt, from its start to its record, within one histogram bin.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

import sqlalchemy as sa

from rule_compiler.store.analytics import BucketStarts, TimeRange, percentile, raw_bucket, rows_covering
from rule_compiler.store.analytics_tables import analytics_webhooks

__all__ = ["WebhookAnalytics", "WebhookPoint", "WebhookSummary", "webhook_analytics"]


@dataclass
class WebhookSummary:
    """Attempts by outcome and their latency, for one action, one bucket or the whole organization."""

    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    histogram: dict[int, int] = field(default_factory=lambda: defaultdict(int))

    @property
    def attempts(self) -> int:
        return self.delivered + self.retrying + self.failed

    @property
    def success_rate(self) -> float | None:
        ended = self.delivered + self.failed
        return self.delivered / ended if ended else None

    @property
    def p50_ms(self) -> float | None:
        return percentile(self.histogram, 0.50)

    @property
    def p95_ms(self) -> float | None:
        return percentile(self.histogram, 0.95)

    def add(self, outcome: str, bin_: int, attempts: int) -> None:
        if outcome in ("delivered", "retrying", "failed"):
            setattr(self, outcome, getattr(self, outcome) + attempts)
        self.histogram[bin_] += attempts


@dataclass(frozen=True)
class WebhookPoint:
    start: dt.datetime
    summary: WebhookSummary


@dataclass(frozen=True)
class WebhookAnalytics:
    """An organization's webhook attempts over a range: the total, per (definition, action), a series."""

    organization: str
    range: TimeRange
    summary: WebhookSummary
    actions: dict[tuple[str, str], WebhookSummary]
    series: list[WebhookPoint]


def webhook_analytics(conn: sa.Connection, organization: str, span: TimeRange) -> WebhookAnalytics:
    """Two grouped reads of the rollups: the range's totals per action (daily rows where whole days are
    covered) and the series by its bucket."""
    t = analytics_webhooks
    attempts = sa.func.sum(t.c.attempts).label("n")
    total = WebhookSummary()
    actions: dict[tuple[str, str], WebhookSummary] = defaultdict(WebhookSummary)
    whole = conn.execute(
        sa.select(t.c.definition, t.c.action, t.c.outcome, t.c.bin, attempts)
        .where(*rows_covering(t, organization, span, coarse=True))
        .group_by(t.c.definition, t.c.action, t.c.outcome, t.c.bin)
    ).all()
    for row in whole:
        actions[(row.definition, row.action)].add(row.outcome, row.bin, int(row.n))
        total.add(row.outcome, row.bin, int(row.n))
    starts = BucketStarts(span)
    points: dict[dt.datetime, WebhookSummary] = defaultdict(WebhookSummary)
    by_bucket = conn.execute(
        sa.select(raw_bucket(t), t.c.outcome, t.c.bin, attempts)
        .where(*rows_covering(t, organization, span))
        .group_by(t.c.bucket, t.c.outcome, t.c.bin)
    ).all()
    for point in by_bucket:
        points[starts(point.bucket)].add(point.outcome, point.bin, int(point.n))
    return WebhookAnalytics(
        organization=organization,
        range=span,
        summary=total,
        actions=dict(sorted(actions.items())),
        series=[WebhookPoint(start, points[start]) for start in sorted(points)],
    )
