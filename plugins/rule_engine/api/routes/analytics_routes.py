"""``/analytics``: how your organization's rules and workflows perform, read from the rollups (ADR 0012).

``GET /analytics`` is the organization's overview (totals, a series, each definition's summary, the top
errors); ``GET /analytics/rules/{name}`` and ``/analytics/workflows/{name}`` one definition's detail with
its actions or nodes. The range is whole UTC hours (default: the last 7 days), bucketed by hour or day.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query, status

from rule_compiler.clock import utcnow
from rule_compiler.store.analytics import TimeRange
from rule_engine.api.consumer_lag import consumer_lags, watched_by
from rule_engine.api.deps import StoreDep, Viewer
from rule_engine.api.routes.error_responses import errors
from rule_engine.api.routes.logs import IsoDateTime, as_utc
from rule_engine.api.schemas_analytics import (
    DefinitionAnalyticsPublic,
    NotificationAnalyticsPublic,
    OrganizationAnalyticsPublic,
    ReportAnalyticsPublic,
    TriggerAnalyticsPublic,
    WebhookAnalyticsPublic,
    definition_public,
    notifications_public,
    organization_public,
    reports_public,
    triggers_public,
    webhooks_public,
)

router = APIRouter(prefix="/analytics", tags=["analytics"])

DEFAULT_RANGE = dt.timedelta(days=7)
_KINDS = {"rules": "rule", "workflows": "workflow"}
Since = Annotated[
    IsoDateTime | None, Query(description="from this time, rounded down to the hour (default: 7 days ago)")
]
Until = Annotated[
    IsoDateTime | None, Query(description="to this time, rounded up to the hour (default: now)")
]
BucketParam = Annotated[Literal["hour", "day"], Query(description="the series' bucket (UTC)")]


def _span(since: dt.datetime | None, until: dt.datetime | None, bucket: Literal["hour", "day"]) -> TimeRange:
    end = as_utc(until) or utcnow()
    start = as_utc(since) or end - DEFAULT_RANGE
    try:
        return TimeRange.of(start, end, bucket)
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc


@router.get("", responses=errors())
def organization_analytics(
    *,
    principal: Viewer,
    store: StoreDep,
    since: Since = None,
    until: Until = None,
    bucket: BucketParam = "day",
) -> OrganizationAnalyticsPublic:
    """Your organization's runs: totals, a series, each rule's and workflow's summary, and top errors.

    Rates are shares of the runs that matched something; durations are read from a histogram (within
    one bin, about 19 %, of the exact percentile). A range covers at most 400 days."""
    found = store.organization_analytics(principal.organization, _span(since, until, bucket))
    return organization_public(found)


@router.get("/notifications", responses=errors())
def notification_analytics(
    *,
    principal: Viewer,
    store: StoreDep,
    since: Since = None,
    until: Until = None,
    bucket: BucketParam = "day",
) -> NotificationAnalyticsPublic:
    """Your organization's notification deliveries per channel, by when they were created: sent,
    failed, muted, digested, how many waited for quiet hours or a digest, attempts; and the series."""
    return notifications_public(
        store.notification_analytics(principal.organization, _span(since, until, bucket))
    )


@router.get("/webhooks", responses=errors())
def webhook_analytics(
    *,
    principal: Viewer,
    store: StoreDep,
    since: Since = None,
    until: Until = None,
    bucket: BucketParam = "day",
) -> WebhookAnalyticsPublic:
    """Your organization's webhook attempts, by when they ended: delivered, retried and given up, the
    success rate and the latency, for the organization, per rule or workflow action, and as a series."""
    return webhooks_public(store.webhook_analytics(principal.organization, _span(since, until, bucket)))


@router.get("/reports", responses=errors())
def report_analytics(
    *,
    principal: Viewer,
    store: StoreDep,
    report: Annotated[str | None, Query(max_length=200, description="one report's name")] = None,
    since: Since = None,
    until: Until = None,
    bucket: BucketParam = "day",
) -> ReportAnalyticsPublic:
    """Your organization's report runs (by when they started): runs by status, p50 and p95 duration, the
    bytes of their files; and their deliveries (by when they were created) by status and type; per
    report and as a series. ``report``: one report only."""
    found = store.report_analytics(principal.organization, _span(since, until, bucket), report)
    return reports_public(found)


@router.get("/triggers", responses=errors())
def trigger_analytics(
    *,
    principal: Viewer,
    store: StoreDep,
    since: Since = None,
    until: Until = None,
) -> TriggerAnalyticsPublic:
    """What your organization's active event rules and workflows were handed over the range: per watched
    table and per rule, runs, events, the events their `fields:` or operations filter dropped, matches
    and runs per event; and each table's consumer lag now (as `GET /health` measures it)."""
    definitions = store.event_definitions(principal.organization)  # read once: the rollups and the lag
    found = store.trigger_analytics(principal.organization, _span(since, until, "day"), definitions)
    specs = [(f"{principal.organization}/{row.name}", row.active, row.spec_json) for _, row in definitions]
    return triggers_public(found, consumer_lags(watched_by(specs), utcnow()))


@router.get("/{kind}/{name}", responses=errors())
def definition_analytics(
    *,
    kind: Literal["rules", "workflows"],
    name: Annotated[str, Path(max_length=200)],
    principal: Viewer,
    store: StoreDep,
    since: Since = None,
    until: Until = None,
    bucket: BucketParam = "day",
) -> DefinitionAnalyticsPublic:
    """One rule's or workflow's runs over the range, with each action's or node's results, durations and
    top errors. A name that never ran there (or no longer exists) answers zeros: its history outlives it."""
    found = store.definition_analytics(
        principal.organization, _KINDS[kind], name, _span(since, until, bucket)
    )
    return definition_public(found)
