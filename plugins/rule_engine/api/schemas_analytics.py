"""Response models of ``/analytics``: an organization's overview and one definition's detail (ADR 0012)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field

from rule_compiler.store import (
    analytics,
    notification_analytics,
    report_analytics,
    trigger_analytics,
    webhook_analytics,
)
from rule_engine.api.schemas import OutModel
from rule_engine.api.schemas_ops import ConsumerLag


class RunSummaryPublic(OutModel):
    """Finished runs by status, the items they tested, matched and acted on, rates and durations."""

    runs: int
    no_match: int
    success: int
    failed: int
    partial: int
    evaluated: int = Field(description="items the evaluations tested (rows or events)")
    matched: int
    acted: int = Field(description="items the actions acted on (the most of any one action of a run)")
    success_rate: float | None = Field(description="success / (runs - no_match); null without such runs")
    failure_rate: float | None
    partial_rate: float | None
    match_rate: float | None = Field(description="matched / evaluated")
    p50_ms: float | None = Field(description="median run duration, within one histogram bin (~19 %)")
    p95_ms: float | None

    @classmethod
    def of(cls, summary: analytics.RunSummary) -> RunSummaryPublic:
        return cls(
            runs=summary.runs,
            no_match=summary.no_match,
            success=summary.success,
            failed=summary.failed,
            partial=summary.partial,
            evaluated=summary.evaluated,
            matched=summary.matched,
            acted=summary.acted,
            success_rate=summary.success_rate,
            failure_rate=summary.failure_rate,
            partial_rate=summary.partial_rate,
            match_rate=summary.match_rate,
            p50_ms=summary.p50_ms,
            p95_ms=summary.p95_ms,
        )


class SeriesPointPublic(RunSummaryPublic):
    """One hour or day (UTC) of a series."""

    start: dt.datetime


class ErrorCountPublic(OutModel):
    """An error class of failed actions or nodes: how often, first and last seen."""

    kind: str
    name: str
    step: str
    error_class: str
    count: int
    first_seen: dt.datetime
    last_seen: dt.datetime


class StepSummaryPublic(OutModel):
    """One action's or node's final results, attempts, retries, items acted on and durations."""

    step: str
    results: int
    success: int
    failed: int
    skipped: int
    attempts: int
    retries: int
    acted: int
    p50_ms: float | None
    p95_ms: float | None


class DefinitionTotalsPublic(OutModel):
    kind: str
    name: str
    summary: RunSummaryPublic


class RangePublic(OutModel):
    """The whole UTC hours covered (``since`` rounded down, ``until`` up) and the bucket size."""

    since: dt.datetime
    until: dt.datetime
    bucket: Literal["hour", "day"]


class OrganizationAnalyticsPublic(OutModel):
    organization: str
    range: RangePublic
    summary: RunSummaryPublic
    series: list[SeriesPointPublic]
    definitions: list[DefinitionTotalsPublic]
    errors: list[ErrorCountPublic]


class DefinitionAnalyticsPublic(OutModel):
    organization: str
    kind: str
    name: str
    range: RangePublic
    summary: RunSummaryPublic
    series: list[SeriesPointPublic]
    steps: list[StepSummaryPublic]
    errors: list[ErrorCountPublic]


def range_public(span: analytics.TimeRange) -> RangePublic:
    return RangePublic(since=span.since, until=span.until, bucket=span.bucket)


def series_public(points: list[analytics.SeriesPoint]) -> list[SeriesPointPublic]:
    return [
        SeriesPointPublic(start=point.start, **RunSummaryPublic.of(point.summary).model_dump())
        for point in points
    ]


def errors_public(errors: list[analytics.ErrorCount]) -> list[ErrorCountPublic]:
    return [
        ErrorCountPublic(
            kind=e.kind,
            name=e.name,
            step=e.step,
            error_class=e.error_class,
            count=e.count,
            first_seen=e.first_seen,
            last_seen=e.last_seen,
        )
        for e in errors
    ]


def organization_public(found: analytics.OrganizationAnalytics) -> OrganizationAnalyticsPublic:
    return OrganizationAnalyticsPublic(
        organization=found.organization,
        range=range_public(found.range),
        summary=RunSummaryPublic.of(found.summary),
        series=series_public(found.series),
        definitions=[
            DefinitionTotalsPublic(kind=d.kind, name=d.name, summary=RunSummaryPublic.of(d.summary))
            for d in found.definitions
        ],
        errors=errors_public(found.errors),
    )


def definition_public(found: analytics.DefinitionAnalytics) -> DefinitionAnalyticsPublic:
    return DefinitionAnalyticsPublic(
        organization=found.organization,
        kind=found.kind,
        name=found.name,
        range=range_public(found.range),
        summary=RunSummaryPublic.of(found.summary),
        series=series_public(found.series),
        steps=[
            StepSummaryPublic(
                step=s.step,
                results=s.results,
                success=s.success,
                failed=s.failed,
                skipped=s.skipped,
                attempts=s.attempts,
                retries=s.retries,
                acted=s.acted,
                p50_ms=s.p50_ms,
                p95_ms=s.p95_ms,
            )
            for s in found.steps
        ],
        errors=errors_public(found.errors),
    )


class ChannelSummaryPublic(OutModel):
    """One channel's deliveries: by current status, attempts, and how many waited for quiet hours
    (``deferred``) or for a digest (``digest``)."""

    channel: str
    deliveries: int
    by_status: dict[str, int]
    sent: int
    failed: int
    muted: int
    digested: int
    attempts: int
    deferred: int = Field(description="waited for the recipient's quiet hours (sent later, or waiting)")
    digest: int = Field(description="waited for a daily digest")

    @classmethod
    def of(cls, summary: notification_analytics.ChannelSummary) -> ChannelSummaryPublic:
        return cls(
            channel=summary.channel,
            deliveries=summary.deliveries,
            by_status=summary.by_status,
            sent=summary.of("sent"),
            failed=summary.of("failed"),
            muted=summary.of("muted"),
            digested=summary.of("digested"),
            attempts=summary.attempts,
            deferred=summary.deferred,
            digest=summary.digest,
        )


class ChannelPointPublic(ChannelSummaryPublic):
    """One bucket (UTC) of one channel."""

    start: dt.datetime


class NotificationAnalyticsPublic(OutModel):
    organization: str
    range: RangePublic
    channels: list[ChannelSummaryPublic]
    series: list[ChannelPointPublic]


def notifications_public(found: notification_analytics.NotificationAnalytics) -> NotificationAnalyticsPublic:
    return NotificationAnalyticsPublic(
        organization=found.organization,
        range=range_public(found.range),
        channels=[ChannelSummaryPublic.of(c) for c in found.channels],
        series=[
            ChannelPointPublic(start=p.start, **ChannelSummaryPublic.of(p.summary).model_dump())
            for p in found.series
        ],
    )


class WebhookSummaryPublic(OutModel):
    """Webhook attempts by how they ended, and their latency (from the attempt's start to its record)."""

    attempts: int
    delivered: int
    retrying: int = Field(description="attempts that ended to be tried again (the retries)")
    failed: int = Field(description="attempts after which the delivery gave up (a redelivery may follow)")
    success_rate: float | None = Field(description="delivered / (delivered + failed); null without either")
    p50_ms: float | None = Field(description="median attempt latency, within one histogram bin (~19 %)")
    p95_ms: float | None

    @classmethod
    def of(cls, summary: webhook_analytics.WebhookSummary) -> WebhookSummaryPublic:
        return cls(
            attempts=summary.attempts,
            delivered=summary.delivered,
            retrying=summary.retrying,
            failed=summary.failed,
            success_rate=summary.success_rate,
            p50_ms=summary.p50_ms,
            p95_ms=summary.p95_ms,
        )


class WebhookActionPublic(WebhookSummaryPublic):
    """One webhook action of a rule or workflow (``definition``: its name)."""

    definition: str
    action: str


class WebhookPointPublic(WebhookSummaryPublic):
    """One bucket (UTC) of the organization's attempts."""

    start: dt.datetime


class WebhookAnalyticsPublic(OutModel):
    organization: str
    range: RangePublic
    summary: WebhookSummaryPublic
    actions: list[WebhookActionPublic]
    series: list[WebhookPointPublic]


def webhooks_public(found: webhook_analytics.WebhookAnalytics) -> WebhookAnalyticsPublic:
    return WebhookAnalyticsPublic(
        organization=found.organization,
        range=range_public(found.range),
        summary=WebhookSummaryPublic.of(found.summary),
        actions=[
            WebhookActionPublic(
                definition=definition, action=action, **WebhookSummaryPublic.of(s).model_dump()
            )
            for (definition, action), s in found.actions.items()
        ],
        series=[
            WebhookPointPublic(start=p.start, **WebhookSummaryPublic.of(p.summary).model_dump())
            for p in found.series
        ],
    )


class ReportSummaryPublic(OutModel):
    """Report runs by status, their durations and the bytes of their files, and their deliveries."""

    runs: int
    by_status: dict[str, int]
    p50_ms: float | None = Field(description="median run duration, within one histogram bin (~19 %)")
    p95_ms: float | None
    bytes: int = Field(description="the rendered files' sizes, summed")
    bytes_per_run: float | None
    deliveries: int
    deliveries_by_status: dict[str, int] = Field(description="sent, failed, retrying, sending")
    deliveries_by_type: dict[str, int] = Field(description="email, slack, webhook, storage, ...")
    attempts: int = Field(description="delivery attempts")

    @classmethod
    def of(cls, s: report_analytics.ReportSummary) -> ReportSummaryPublic:
        by_status: dict[str, int] = {}
        by_type: dict[str, int] = {}
        for (kind, status), count in s.deliveries_by.items():
            by_status[status] = by_status.get(status, 0) + count
            by_type[kind] = by_type.get(kind, 0) + count
        return cls(
            runs=s.runs,
            by_status={k: v for k, v in s.by_status.items() if v},
            p50_ms=s.p50_ms,
            p95_ms=s.p95_ms,
            bytes=s.bytes,
            bytes_per_run=s.bytes_per_run,
            deliveries=s.deliveries(),
            deliveries_by_status={k: v for k, v in by_status.items() if v},
            deliveries_by_type={k: v for k, v in by_type.items() if v},
            attempts=s.attempts,
        )


class ReportTotalsPublic(ReportSummaryPublic):
    report: str


class ReportPointPublic(ReportSummaryPublic):
    start: dt.datetime


class ReportAnalyticsPublic(OutModel):
    organization: str
    range: RangePublic
    summary: ReportSummaryPublic
    reports: list[ReportTotalsPublic]
    series: list[ReportPointPublic]


def reports_public(found: report_analytics.ReportAnalytics) -> ReportAnalyticsPublic:
    return ReportAnalyticsPublic(
        organization=found.organization,
        range=range_public(found.range),
        summary=ReportSummaryPublic.of(found.summary),
        reports=[
            ReportTotalsPublic(report=name, **ReportSummaryPublic.of(s).model_dump())
            for name, s in found.reports.items()
        ],
        series=[
            ReportPointPublic(start=p.start, **ReportSummaryPublic.of(p.summary).model_dump())
            for p in found.series
        ],
    )


class EventRuleTotalsPublic(OutModel):
    """One event rule or workflow: what it was handed over the range."""

    kind: str
    name: str
    connection: str
    table: str
    runs: int
    events: int = Field(description="events of its table handed to it")
    ignored: int = Field(description="of those, dropped by its `fields:` or operations filter")
    matched: int
    runs_per_event: float | None


class TableTotalsPublic(OutModel):
    """A watched table: its rules' totals summed (an event counts once per rule that watches it), and
    the lag of its triggers' cursors now."""

    connection: str
    table: str
    rules: list[str]
    runs: int
    events: int
    ignored: int
    matched: int
    runs_per_event: float | None
    consumers: list[ConsumerLag]


class TriggerAnalyticsPublic(OutModel):
    organization: str
    range: RangePublic
    tables: list[TableTotalsPublic]
    rules: list[EventRuleTotalsPublic]


def triggers_public(
    found: trigger_analytics.TriggerAnalytics, lags: list[ConsumerLag]
) -> TriggerAnalyticsPublic:
    def lag_of(connection: str, table: str) -> list[ConsumerLag]:
        return [lag for lag in lags if (lag.connection, lag.table) == (connection, table)]

    return TriggerAnalyticsPublic(
        organization=found.organization,
        range=range_public(found.range),
        tables=[
            TableTotalsPublic(
                **{
                    f: getattr(t, f)
                    for f in ("connection", "table", "rules", "runs", "events", "ignored", "matched")
                },
                runs_per_event=t.runs_per_event,
                consumers=lag_of(t.connection, t.table),
            )
            for t in found.tables
        ],
        rules=[
            EventRuleTotalsPublic(
                **{
                    f: getattr(r, f)
                    for f in ("kind", "name", "connection", "table", "runs", "events", "ignored")
                },
                matched=r.matched,
                runs_per_event=r.runs_per_event,
            )
            for r in found.rules
        ],
    )
