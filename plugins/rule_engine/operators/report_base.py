"""What every task of a report DAG shares: the report's id, the run's data interval and working
folder, its execution-log row and the spec version it runs (``reports.py`` has the tasks)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from rule_compiler.compiler import DagSpec
from rule_compiler.compiler.report import QUERIES_TASK
from rule_compiler.store import report_runs
from rule_engine.operators.base import RuleTaskOperator
from rule_engine.report_steps import ReportJob, spec_tasks


class ReportTaskOperator(RuleTaskOperator):
    """What report tasks share: the report's id, the run's interval and folder, its log row."""

    template_fields = ()
    ui_color = "#e6f4ea"

    @property
    def report_id(self) -> str:
        return str(self.spec_params["report_id"])

    @property
    def rule_id(self) -> str:
        return self.report_id

    @cached_property
    def engine(self) -> sa.Engine:
        return self.store.engine

    def interval(self, context: Mapping[str, Any]) -> tuple[dt.datetime, dt.datetime]:
        """The run's data interval; a run triggered without a logical date (so without an interval)
        reads the last complete one before it, as Airflow infers for a manual run with one."""
        start, end = context.get("data_interval_start"), context.get("data_interval_end")
        if start and end:
            return utc(start), utc(end)
        moment = utc(self.run_time(context))
        spec = self.spec()
        if spec is None or not spec.schedule.cron:
            return moment, moment
        return last_complete_interval(spec.schedule.cron, spec.schedule.timezone or "UTC", moment)

    def workdir(self, context: Mapping[str, Any]) -> Path:
        from rule_compiler.reporting.workdir import run_workdir, workdir_base

        return run_workdir(workdir_base(), self.dag_id, str(context["run_id"]))

    def job(self, context: Mapping[str, Any]) -> ReportJob:
        """What the report steps read: the params of the spec version this task runs (its own as pinned)."""
        spec = self.spec()
        return ReportJob(
            engine=self.engine,
            report_id=self.report_id,
            tasks={**spec_tasks(spec), self.task_id: self.spec_params},
            timezone=(spec.schedule.timezone if spec else None) or "UTC",
            workdir=self.workdir(context),
            query_role=self.query_role,
        )

    def run_row(self, context: Mapping[str, Any]) -> report_runs.ReportRun | None:
        return report_runs.get_report_run(self.engine, dag_id=self.dag_id, run_id=str(context["run_id"]))

    def pin(self, context: Mapping[str, Any]) -> None:
        """Use the spec version ``run_queries`` ran with, if the report was edited mid-run."""
        pushed = context["ti"].xcom_pull(task_ids=QUERIES_TASK)
        if isinstance(pushed, dict):
            self.pin_to_run_version(pushed.get("spec_hash"))

    def note_error(self, context: Mapping[str, Any], error: str) -> None:
        """Add this task's error to the run's log (the outcome task settles the status)."""
        row = self.run_row(context)
        if row is not None:
            report_runs.add_error(self.engine, row.id, f"{self.task_id}: {error}")

    def final_try(self, context: Mapping[str, Any]) -> bool:
        return int(context["ti"].try_number) > int(self.retries or 0)

    def spec(self) -> DagSpec | None:
        """The spec version this task runs (for the other tasks' params and the schedule)."""
        stored = self.store.spec_by_hash(self.spec_hash)
        return DagSpec.model_validate_json(stored) if stored is not None else None

    def task_params(self, task_id: str) -> dict[str, Any]:
        """Another task's params in the spec version this task runs (empty when it is gone)."""
        spec = self.spec()
        task = next((t for t in spec.tasks if t.task_id == task_id), None) if spec else None
        return dict(task.params) if task is not None else {}


def utc(value: Any) -> dt.datetime:
    """A stdlib, timezone-aware UTC datetime (Airflow hands out pendulum ones; naive is UTC)."""
    moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return dt.datetime.fromisoformat(moment.astimezone(dt.UTC).isoformat())


def last_complete_interval(cron: str, timezone: str, moment: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The cron interval that ended last at or before ``moment`` (``infer_manual_data_interval``)."""
    from croniter import croniter

    zone = ZoneInfo(timezone)
    naive = moment.astimezone(zone).replace(tzinfo=None) + dt.timedelta(seconds=1)
    end: dt.datetime = croniter(cron, naive).get_prev(dt.datetime)
    start: dt.datetime = croniter(cron, end).get_prev(dt.datetime)
    return (utc(start.replace(tzinfo=zone)), utc(end.replace(tzinfo=zone)))
