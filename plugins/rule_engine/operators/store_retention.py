"""The tasks of the ``rule_engine_retention`` DAG; the work is in :mod:`rule_compiler.store.purge` and
:mod:`rule_compiler.runtime.ledger_retention`.

Imported when the maintenance DAG file is parsed, so the heavy modules load only when a task runs.
Both tasks take "now" from the DAG run (its logical date, else when it was asked to run), so a retry
purges at the same cutoff as the attempt that crashed and resumes it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import BaseOperator

RETENTION_DAG_ID = "rule_engine_retention"
ACTOR = f"airflow:{RETENTION_DAG_ID}"


def _run_now(context: Any) -> dt.datetime:
    from rule_compiler.clock import utcnow

    moment = context.get("logical_date") or getattr(context.get("dag_run"), "run_after", None)
    return moment if isinstance(moment, dt.datetime) else utcnow()


class ObjectStorageSink:
    """Archive files under the administrator's storage (``$AUTOMATION_REPORTS_STORAGE``, else
    ``$AIRFLOW_HOME/reports``), each in its organization's folder: a local folder or a bucket."""

    def __init__(self) -> None:
        from pathlib import Path

        from rule_compiler.store.archive import FolderSink
        from rule_engine.report_sending import storage_base

        self.base = storage_base(None, None)
        self.local = FolderSink(Path(self.base.path)) if self.base.protocol == "file" else None

    def write(self, name: str, data: bytes) -> str:
        if self.local is not None:
            return self.local.write(name, data)
        target: Any = self.base / name  # ObjectStoragePath.open is untyped
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("wb") as file:
            file.write(data)
        return str(target)


class StoreRetentionOperator(BaseOperator):
    """Purge the rule store's finished rows older than their retention (``AUTOMATION_RETENTION_*``),
    archiving them first when ``AUTOMATION_RETENTION_ARCHIVE`` is true. Returns (as XCom) what went."""

    template_fields = ()
    ui_color = "#fef7e0"

    def execute(self, context: Any) -> dict[str, Any]:
        from rule_compiler.retention_settings import RetentionSettings
        from rule_compiler.store import RuleStore

        settings = RetentionSettings.from_env()  # a bad setting fails the task, naming the variable
        now = _run_now(context)
        sink = ObjectStorageSink() if settings.archive else None
        store = RuleStore()
        try:
            results = store.purge_expired(
                settings, now=now, actor=ACTOR, sink=sink, progress=lambda r: self.log.info(
                    "%s: %d row(s) finished before %s purged in %d chunk(s)%s",
                    r.target, r.purged, r.cutoff.isoformat(timespec="seconds"), r.chunks,
                    f", archived in {len(r.files)} file(s)" if sink is not None else "",
                ),
            )  # fmt: skip
        finally:
            store.close()
        summary: dict[str, Any] = {}
        for result in results:
            summary.setdefault(result.target, []).append(result.as_dict())
        return summary


class LedgerRetentionOperator(BaseOperator):
    """Purge ledger rows older than ``AUTOMATION_RETENTION_LEDGER`` in every application database a
    stored record action writes to. One database that fails is logged and the others still run; the
    task then fails, naming them."""

    template_fields = ()
    ui_color = "#fef7e0"

    def execute(self, context: Any) -> dict[str, int]:
        from airflow.sdk.exceptions import AirflowException

        from rule_compiler.retention_settings import RetentionSettings
        from rule_compiler.runtime.ledger_retention import ledger_connections, purge_ledger
        from rule_compiler.store import RuleStore
        from rule_engine.hooks.app_database import AppDatabaseHook

        cutoff = RetentionSettings.from_env().cutoff("ledger", _run_now(context))
        if cutoff is None:
            self.log.info("AUTOMATION_RETENTION_LEDGER is never: the ledgers are kept")
            return {}
        store = RuleStore()
        try:
            connections = ledger_connections(row.spec_json for row in store.loadable_specs())
        finally:
            store.close()
        purged: dict[str, int] = {}
        failed: list[str] = []
        for conn_id in sorted(connections):
            try:  # the engine is the seam's: shared, never disposed here
                purged[conn_id] = purge_ledger(AppDatabaseHook(conn_id).engine, older_than=cutoff)
            except Exception:
                self.log.exception("connection %s: ledger purge failed", conn_id)
                failed.append(conn_id)
                continue
            self.log.info(
                "connection %s: %d ledger row(s) before %s purged", conn_id, purged[conn_id], cutoff
            )
        if failed:
            raise AirflowException(f"the ledger purge failed for connection(s): {', '.join(failed)}")
        return purged
