"""Failure-rate alerts (ADR 0014): which rules and workflows failed too often in a window.

A definition is watched when it is active, has an ``owner`` and has ``alerts`` (or the deployment sets
``$AUTOMATION_FAILURE_ALERTS``). Windows are whole hours aligned to the Unix epoch in UTC (``6h``:
00:00-06:00, 06:00-12:00, ...). Its failure rate is the analytics one: failed runs over the runs that
matched something, summed from the hourly rollups. A window whose rate reaches ``failure_rate`` over at
least ``min_runs`` such runs is claimed in the store (once) and returned, for the owner to be told.
Both the current window and the one before are checked, so runs that finish just after a window ends
still count for it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from pydantic import ValidationError

from rule_compiler.definitions.common import FailureAlerts, window_hours
from rule_compiler.errors import InvalidValueError
from rule_compiler.settings import FAILURE_ALERTS_ENV
from rule_compiler.store import RuleStore
from rule_compiler.store.analytics import RunSummary
from rule_compiler.store.failure_alerts import claim_window, hourly_statuses

#: The kinds whose runs are watched.
WATCHED_KINDS = ("rule", "workflow")
_HOUR = dt.timedelta(hours=1)


@dataclass(frozen=True)
class Watched:
    organization: str
    kind: str
    name: str
    owner: str
    alerts: FailureAlerts


@dataclass(frozen=True)
class Crossing:
    """A window whose failure rate reached the threshold: what the owner is told."""

    watched: Watched
    window_start: dt.datetime
    window_end: dt.datetime
    summary: RunSummary

    @property
    def rate(self) -> float:
        return self.summary.failure_rate or 0.0

    @property
    def runs(self) -> int:
        """The runs the rate is a share of (those that matched something)."""
        return self.summary.runs - self.summary.no_match


def deployment_default(raw: Mapping[str, str] | None) -> FailureAlerts | None:
    """The deployment's alert from ``$AUTOMATION_FAILURE_ALERTS`` (parsed by settings); checked here."""
    if raw is None:
        return None
    try:
        return FailureAlerts.model_validate(dict(raw))
    except ValidationError as exc:
        raise InvalidValueError(f"{FAILURE_ALERTS_ENV}: {exc.errors()[0]['msg']}") from None


def watched(store: RuleStore, default: FailureAlerts | None) -> Iterator[Watched]:
    """Every active rule and workflow with an owner and an alert (its own, else ``default``)."""
    for kind in WATCHED_KINDS:
        for organization in sorted({summary.organization for summary in store.list(kind=kind)}):
            for stored in store.definitions_of_kind(organization, kind):
                owner = str(stored.source.get("owner") or "").strip()
                own = stored.source.get("alerts")
                alerts = FailureAlerts.model_validate(own) if isinstance(own, dict) else default
                if stored.active and owner and alerts is not None:
                    yield Watched(organization, kind, stored.name, owner, alerts)


def window_start(moment: dt.datetime, hours: int) -> dt.datetime:
    """The start of the ``hours``-long window ``moment`` falls in (aligned to the epoch, UTC)."""
    epoch_hours = int(moment.timestamp() // 3600)
    return dt.datetime.fromtimestamp((epoch_hours - epoch_hours % hours) * 3600, dt.UTC)


def crossings(store: RuleStore, target: Watched, now: dt.datetime) -> list[Crossing]:
    """The windows of ``target`` (the previous and the current one) whose rate reached its threshold."""
    hours = window_hours(target.alerts.window)
    span = dt.timedelta(hours=hours)
    current = window_start(now, hours)
    counts = hourly_statuses(
        store.engine,
        organization=target.organization,
        kind=target.kind,
        name=target.name,
        since=current - span,
        until=current + span,
    )
    found = []
    for start in (current - span, current):
        statuses: dict[str, int] = {}
        hour = start
        while hour < start + span:
            for status, runs in counts.get(hour, {}).items():
                statuses[status] = statuses.get(status, 0) + runs
            hour += _HOUR
        summary = RunSummary(
            runs=sum(statuses.get(s, 0) for s in ("no_match", "success", "failed", "partial")),
            no_match=statuses.get("no_match", 0),
            success=statuses.get("success", 0),
            failed=statuses.get("failed", 0),
            partial=statuses.get("partial", 0),
        )
        crossing = Crossing(target, start, start + span, summary)
        if crossing.runs >= target.alerts.min_runs and crossing.rate >= target.alerts.failure_rate:
            found.append(crossing)
    return found


def due_alerts(store: RuleStore, now: dt.datetime, default: FailureAlerts | None = None) -> list[Crossing]:
    """The windows to alert now: each crossing claimed in the store first, so each window once."""
    due = []
    for target in watched(store, default):
        for crossing in crossings(store, target, now):
            claimed = claim_window(
                store.engine,
                organization=target.organization,
                kind=target.kind,
                name=target.name,
                window_start=crossing.window_start,
                window_hours=window_hours(target.alerts.window),
                runs=crossing.runs,
                failed=crossing.summary.failed,
                threshold=target.alerts.failure_rate,
                owner=target.owner,
                alerted_at=now,
            )
            if claimed:
                due.append(crossing)
    return due
