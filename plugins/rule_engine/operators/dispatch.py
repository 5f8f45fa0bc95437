"""The tasks of the ``rule_engine_notifications`` DAG; the work is in
:mod:`rule_engine.notification_dispatcher` and :mod:`rule_engine.failure_rate_alerts`.

Imported when the maintenance DAG file is parsed, so the heavy modules load only when a task runs.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator

DISPATCHER_DAG_ID = "rule_engine_notifications"


class DispatchDeferredOperator(BaseOperator):
    """Send every deferred notification whose quiet hours have ended."""

    template_fields = ()
    ui_color = "#fef7e0"

    def execute(self, context: Any) -> dict[str, int]:
        from rule_compiler.store import RuleStore
        from rule_engine.notification_dispatcher import dispatch_due

        store = RuleStore()
        try:
            counts = dispatch_due(store.engine)
        finally:
            store.close()
        self.log.info("deferred notifications: %s", counts)
        return counts


class DispatchDigestsOperator(BaseOperator):
    """Send the daily digests whose time has come (one per recipient and channel)."""

    template_fields = ()
    ui_color = "#fef7e0"

    def execute(self, context: Any) -> dict[str, int]:
        from rule_compiler.store import RuleStore
        from rule_engine.notification_dispatcher import dispatch_digests

        store = RuleStore()
        try:
            counts = dispatch_digests(store.engine)
        finally:
            store.close()
        self.log.info("digests: %s", counts)
        return counts


class CheckFailureRatesOperator(BaseOperator):
    """Tell owners whose rules or workflows failed too often in a window (once per window)."""

    template_fields = ()
    ui_color = "#fef7e0"

    def execute(self, context: Any) -> dict[str, int]:
        from rule_compiler.store import RuleStore
        from rule_engine.failure_rate_alerts import check_failure_rates

        store = RuleStore()
        try:
            counts = check_failure_rates(store)
        finally:
            store.close()
        self.log.info("failure-rate alerts: %s", counts)
        return counts
