"""Notification delivery analytics read from ``analytics_notifications`` (ADR 0012): per channel and
current status, with attempts and how many deliveries waited (quiet hours, a digest), over a range of
whole UTC hours, and the series per hour or day."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from rule_compiler.store.analytics import BucketStarts, TimeRange, raw_bucket, rows_covering
from rule_compiler.store.tables import analytics_notifications

__all__ = ["ChannelPoint", "ChannelSummary", "NotificationAnalytics", "notification_analytics"]


@dataclass(frozen=True)
class ChannelSummary:
    """One channel's deliveries by current status, their attempts, and how many waited: for quiet
    hours (``deferred``: sent later, or still waiting) or for a digest."""

    channel: str
    by_status: dict[str, int]
    attempts: int
    deferred: int
    digest: int

    @property
    def deliveries(self) -> int:
        return sum(self.by_status.values())

    def of(self, status: str) -> int:
        return self.by_status.get(status, 0)


@dataclass(frozen=True)
class ChannelPoint:
    """One bucket of one channel's series."""

    start: dt.datetime
    summary: ChannelSummary


@dataclass(frozen=True)
class NotificationAnalytics:
    """An organization's notification deliveries per channel over a range, and their series."""

    organization: str
    range: TimeRange
    channels: list[ChannelSummary]
    series: list[ChannelPoint]


def _channel_summaries(rows: Sequence[Any], key: Any) -> dict[Any, ChannelSummary]:
    counts: dict[Any, dict[str, Any]] = {}
    for row in rows:
        entry = counts.setdefault(key(row), {"by_status": {}, "attempts": 0, "deferred": 0, "digest": 0})
        entry["by_status"][row.status] = entry["by_status"].get(row.status, 0) + int(row.deliveries)
        entry["attempts"] += int(row.attempts)
        waited = "digest" if row.status in ("digest", "digested") else "deferred"
        entry[waited] += int(row.queued)
    return {
        k: ChannelSummary(
            channel=k if isinstance(k, str) else k[1],
            by_status={s: n for s, n in sorted(v["by_status"].items()) if n},
            attempts=v["attempts"],
            deferred=v["deferred"],
            digest=v["digest"],
        )
        for k, v in counts.items()
    }


def notification_analytics(conn: sa.Connection, organization: str, span: TimeRange) -> NotificationAnalytics:
    """The organization's notification deliveries per channel (created in ``span``) and their series."""
    t = analytics_notifications
    sums = (
        sa.func.sum(t.c.deliveries).label("deliveries"),
        sa.func.sum(t.c.attempts).label("attempts"),
        sa.func.sum(t.c.queued).label("queued"),
    )
    whole = conn.execute(
        sa.select(t.c.channel, t.c.status, *sums)
        .where(*rows_covering(t, organization, span, coarse=True))
        .group_by(t.c.channel, t.c.status)
    ).all()
    starts = BucketStarts(span)
    by_bucket = conn.execute(
        sa.select(raw_bucket(t), t.c.channel, t.c.status, *sums)
        .where(*rows_covering(t, organization, span))
        .group_by(t.c.bucket, t.c.channel, t.c.status)
    ).all()
    points = _channel_summaries(by_bucket, lambda row: (starts(row.bucket), row.channel))
    return NotificationAnalytics(
        organization=organization,
        range=span,
        channels=[
            summary for _, summary in sorted(_channel_summaries(whole, lambda row: row.channel).items())
        ],
        series=[ChannelPoint(start, points[(start, channel)]) for start, channel in sorted(points)],
    )
