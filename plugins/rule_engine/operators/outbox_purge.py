"""The task of the ``rule_engine_outbox_purge`` DAG; the work is in :mod:`rule_compiler.events.retention`.

Imported when the maintenance DAG file is parsed, so the heavy modules load only when the task runs.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator

OUTBOX_PURGE_DAG_ID = "rule_engine_outbox_purge"


class OutboxPurgeOperator(BaseOperator):
    """Purge consumed, old outbox events of every table an active event rule watches.

    One application database per connection id: one that fails (unreachable, no such connection) is
    logged and the others still run; the task then fails, naming them. Returns (as XCom) per
    connection the events purged per table and the events kept of tables no active rule watches.
    """

    template_fields = ()
    ui_color = "#fef7e0"

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowException

        from rule_compiler.clock import utcnow
        from rule_compiler.events.retention import (
            outbox_retention,
            purge_connection,
            watched_tables,
            watching_consumers,
            watching_rules,
        )
        from rule_compiler.store import RuleStore
        from rule_engine.hooks.app_database import AppDatabaseHook

        retention = outbox_retention()
        older_than = utcnow() - retention
        store = RuleStore()
        try:
            specs = store.loadable_specs()
            watched = watched_tables(specs)
            rules = watching_rules(specs)
            triggers = watching_consumers(specs)
        finally:
            store.close()
        self.log.info(
            "purging events older than %s (retention %s) of %d watched table(s)",
            older_than.isoformat(timespec="seconds"),
            retention,
            sum(len(tables) for tables in watched.values()),
        )
        results: dict[str, Any] = {}
        failed: list[str] = []
        for conn_id, tables in sorted(watched.items()):
            try:
                result = purge_connection(  # the engine is the seam's: shared, never disposed here
                    AppDatabaseHook(conn_id).engine,
                    tables,
                    older_than=older_than,
                    rules=rules.get(conn_id, {}),
                    consumers=triggers.get(conn_id, {}),
                )
            except Exception:
                self.log.exception("connection %s: outbox purge failed", conn_id)
                failed.append(conn_id)
                continue
            results[conn_id] = result.as_dict()
            if not result.has_outbox:
                self.log.info("connection %s: no outbox (change capture never installed)", conn_id)
            for table, count in result.purged.items():
                self.log.info("connection %s: %d event(s) of %s purged", conn_id, count, table)
            for table, count in result.kept_unwatched.items():
                self.log.info(
                    "connection %s: %d event(s) of %s kept: no active rule watches it", conn_id, count, table
                )
        if failed:
            raise AirflowException(
                f"outbox purge failed for connection(s) {', '.join(failed)} (the others were purged; "
                "see the log above)"
            )
        return results
