"""Counters and timers for the operators' own monitoring, through Airflow's stats API.

They reach StatsD (or OpenTelemetry, or Datadog) as Airflow's own metrics do: ``[metrics] statsd_on``
(or ``otel_on``) with the ``statsd`` package installed; tags reach StatsD only with ``[metrics]
statsd_influxdb_enabled``. Names are under Airflow's prefix (``airflow.`` by default); docs/operations.md
lists them all. Every metric is tagged with the organization and, where there is one, the outcome; the
``definition`` tag is opt-in (``AUTOMATION_METRICS_DEFINITION_TAGS``). A metric never fails a task: an
error while emitting is logged and dropped.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

#: name -> (type, what it counts or times), for the docs and the test of the docs.
METRICS = {
    "rule_engine.runs": ("counter", "finished runs of rules and workflows, by outcome"),
    "rule_engine.run_duration": ("timer", "a run's duration, from its evaluation to its recorded outcome"),
    "rule_engine.items_evaluated": ("counter", "items (rows or events) the runs tested"),
    "rule_engine.items_matched": ("counter", "items that matched the conditions"),
    "rule_engine.actions": ("counter", "recorded action attempts, by action type and outcome"),
    "rule_engine.action_duration": ("timer", "an action attempt's duration, by action type and outcome"),
}


def _tags(organization: str, kind: str, name: str, **more: str) -> dict[str, str]:
    from rule_compiler.settings import metrics_definition_tags

    tags = {"organization": organization, "kind": kind, **more}
    try:
        if metrics_definition_tags():
            tags["definition"] = name
    except ValueError as exc:
        log.warning("%s; metrics go without the definition tag", exc)
    return tags


def run_finished(
    *,
    organization: str,
    kind: str,
    name: str,
    outcome: str,
    duration_ms: float | None,
    evaluated: int,
    matched: int,
) -> None:
    """A run of a rule or workflow ended with ``outcome`` (success, partial, failed, no_match)."""
    try:
        from airflow.sdk.observability import stats

        tags = _tags(organization, kind, name, outcome=outcome)
        stats.incr("rule_engine.runs", tags=tags)
        if duration_ms is not None:
            stats.timing("rule_engine.run_duration", duration_ms, tags=tags)
        counts = _tags(organization, kind, name)
        stats.incr("rule_engine.items_evaluated", count=evaluated, tags=counts)
        stats.incr("rule_engine.items_matched", count=matched, tags=counts)
    except Exception:  # a metric never fails the run
        log.warning("could not emit the run's metrics", exc_info=True)


def action_recorded(
    *, organization: str, kind: str, name: str, action_type: str, outcome: str, duration_ms: float | None
) -> None:
    """An action attempt was recorded as ``outcome`` (success, retrying, failed)."""
    try:
        from airflow.sdk.observability import stats

        tags: dict[str, Any] = _tags(organization, kind, name, action_type=action_type, outcome=outcome)
        stats.incr("rule_engine.actions", tags=tags)
        if duration_ms is not None:
            stats.timing("rule_engine.action_duration", duration_ms, tags=tags)
    except Exception:  # a metric never fails the action
        log.warning("could not emit the action's metrics", exc_info=True)
