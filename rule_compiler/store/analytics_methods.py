"""The rule store's analytics methods (:mod:`.analytics`, :mod:`.rollups`).

Mixed into :class:`~rule_compiler.store.rule_store.RuleStore`; each method is one short transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from rule_compiler.events.watch import watch_of_spec_json
from rule_compiler.store import (
    analytics,
    definition_board,
    notification_analytics,
    report_analytics,
    report_rollups,
    rollups,
    trigger_analytics,
    webhook_analytics,
)
from rule_compiler.store._db import Database


class AnalyticsMethods:
    """How the automations perform, read from the rollups the automation log keeps."""

    _db: Database

    def organization_analytics(
        self, organization: str, span: analytics.TimeRange
    ) -> analytics.OrganizationAnalytics:
        """An organization's totals, series, per-definition summaries and top errors over ``span``."""
        with self._db.transaction(single_read=True) as conn:
            return analytics.organization_analytics(conn, organization, span)

    def definition_analytics(
        self, organization: str, kind: str, name: str, span: analytics.TimeRange
    ) -> analytics.DefinitionAnalytics:
        """One rule's or workflow's summary, series, actions or nodes, and top errors over ``span``."""
        with self._db.transaction(single_read=True) as conn:
            return analytics.definition_analytics(conn, organization, kind, name, span)

    def board_entries(self, organization: str) -> list[definition_board.BoardEntry]:
        """The organization's rules, workflows and reports for the definitions board, by name."""
        with self._db.transaction(single_read=True) as conn:
            return definition_board.board_entries(conn, organization)

    def board_stats(
        self, organization: str, keys: Sequence[tuple[str, str]], *, days: int, now: dt.datetime
    ) -> dict[tuple[str, str], definition_board.BoardStats]:
        """The last run and daily tallies of the given (kind, name)s (see :mod:`.definition_board`)."""
        with self._db.transaction() as conn:
            return definition_board.board_stats(conn, organization, keys, days=days, now=now)

    def notification_analytics(
        self, organization: str, span: analytics.TimeRange
    ) -> notification_analytics.NotificationAnalytics:
        """The organization's notification deliveries per channel and status over ``span``."""
        with self._db.transaction(single_read=True) as conn:
            return notification_analytics.notification_analytics(conn, organization, span)

    def webhook_analytics(
        self, organization: str, span: analytics.TimeRange
    ) -> webhook_analytics.WebhookAnalytics:
        """The organization's webhook attempts over ``span``: success rate, latency, retries, per action."""
        with self._db.transaction(single_read=True) as conn:
            return webhook_analytics.webhook_analytics(conn, organization, span)

    def report_analytics(
        self, organization: str, span: analytics.TimeRange, report: str | None = None
    ) -> report_analytics.ReportAnalytics:
        """The organization's (or one report's) report runs, durations, sizes and deliveries over ``span``."""
        with self._db.transaction(single_read=True) as conn:
            return report_analytics.report_analytics(conn, organization, span, report)

    def event_definitions(self, organization: str) -> list[tuple[str, Any]]:
        """(kind, current definition) of the organization's rules and workflows: what can watch a table."""
        definitions_of_kind = self.definitions_of_kind  # type: ignore[attr-defined]  # RuleStore's
        return [
            (kind, row) for kind in ("rule", "workflow") for row in definitions_of_kind(organization, kind)
        ]

    def trigger_analytics(
        self,
        organization: str,
        span: analytics.TimeRange,
        definitions: Sequence[tuple[str, Any]] | None = None,
    ) -> trigger_analytics.TriggerAnalytics:
        """What the organization's active event rules and workflows were handed over ``span``, per watched
        table and per rule: runs, events, events their filters dropped, matches, runs per event.
        ``definitions``: :meth:`event_definitions`, when the caller has read them already."""
        rows = self.event_definitions(organization) if definitions is None else definitions
        watches = {}
        for kind, row in rows:
            watch = watch_of_spec_json(row.spec_json) if row.active else None
            if watch is not None:
                watches[(kind, row.name)] = (watch.connection, watch.table)
        with self._db.transaction(single_read=True) as conn:
            return trigger_analytics.trigger_analytics(conn, organization, span, watches)

    def rebuild_rollups(self, since: dt.datetime | None = None) -> int:
        """Recompute the rollups from ``since`` (all when None) out of the raw log, report runs and
        deliveries included; the automation runs read (webhook attempts are never rebuilt: ADR 0012)."""
        with self._db.transaction(write=True) as conn:
            count = rollups.rebuild(conn, since=since)
            report_rollups.rebuild_reports(conn, start=rollups.rebuild_start(conn, since))
            return count

    def rebuild_report_rollups(self) -> int:
        """Recompute the report rollups (every day since the last purge) from the report runs and
        deliveries; the report runs read."""
        with self._db.transaction(write=True) as conn:
            return report_rollups.rebuild_reports(conn, start=rollups.rebuild_start(conn, None))
