"""The tasks of a report DAG: run the queries, render each format, deliver (mapped), settle the log.

``run_queries`` streams each query's rows to a CSV file in the run's folder (read-only transaction,
statement timeout, row cap) and writes the manifest; it decides whether the run goes on
(``skip_if_empty``, the alert check, the alert's grace period) and otherwise raises
``AirflowSkipException``, so the render and deliver tasks show *skipped* in the UI. Each
``render_<format>`` task writes one file. ``deliver`` is mapped over the report's destinations: one
task instance per delivery, each retried on its own and recorded before and after every attempt
under a key of (report, data interval end, delivery index), so a second run of the same interval
sends nothing again. ``record_report`` (``all_done``) settles the execution log: success, partial
(some deliveries failed), skipped-empty, not-triggered or error; then it removes the report's run
folders older than ``AUTOMATION_REPORTS_WORKDIR_RETENTION`` (never its own run's).

Nothing here passes through Airflow's templater (``template_fields = ()``): report SQL, templates,
subjects and paths are rendered only by our sandbox. XCom carries ids, counts and file names.
``rule_compiler.reporting`` (matplotlib, openpyxl, the PDF renderer) is imported inside ``execute``,
so parsing the DAG file stays fast for every automation.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from rule_compiler.clock import utcnow
from rule_compiler.compiler.report import render_task_id
from rule_compiler.errors import PermanentActionError
from rule_compiler.runtime.report_delivery import ReportRunInfo, delivery_key
from rule_compiler.store import report_runs
from rule_compiler.store.report_runs import SETTLED_BEFORE_DELIVERY
from rule_engine.notices import describe
from rule_engine.operators.report_base import ReportTaskOperator, utc
from rule_engine.operators.webhooks import RetryAfterPolicy
from rule_engine.report_steps import MAX_DELIVERY_SECONDS, query_step, render, run_info, send, settle
from rule_engine.report_steps import sweep_workdirs as sweep


class ReportQueriesOperator(ReportTaskOperator):
    """Run every query of the report into the run's folder; decide whether the run goes on."""

    ui_color = "#e8f0fe"

    def execute(self, context: Any) -> dict[str, Any]:
        start, end = self.interval(context)
        logical = context.get("logical_date")
        overrides = _overrides(context)
        run_pk = report_runs.start_report_run(
            self.engine,
            report_id=self.report_id,
            dag_id=self.dag_id,
            run_id=str(context["run_id"]),
            spec_hash=self.spec_hash,
            interval_start=start,
            interval_end=end,
            logical_date=utc(logical) if logical else None,
            parameters=overrides,
            now=utcnow(),
        )
        job = self.job(context)
        try:
            step = query_step(
                job,
                run_pk,
                overrides,
                (start, end),
                utc(self.run_time(context)),
                final=self.final_try(context),
            )
        except PermanentActionError as exc:  # no retry can fix it
            raise AirflowFailException(str(exc)) from exc
        manifest = step.manifest
        rows = {result.id: result.row_count for result in manifest.results}
        self.log.info("rows per query, %s to %s: %s", manifest.interval_start, manifest.interval_end, rows)
        if step.stopped is not None:
            self.log.info("%s: %s; nothing is rendered or delivered", step.stopped, step.reason)
            raise AirflowSkipException(f"{step.stopped}: {step.reason}")
        return {"spec_hash": self.spec_hash, "rows": rows}


class ReportRenderOperator(ReportTaskOperator):
    """Render one format from the run's query results."""

    ui_color = "#fef7e0"

    def execute(self, context: Any) -> dict[str, Any]:
        from rule_compiler.reporting.report_errors import ReportRenderError

        self.pin(context)
        fmt = str(self.spec_params["format"])
        started = time.monotonic()
        try:
            path = render(self.job(context), fmt)
        except ReportRenderError as exc:  # a chart naming a column the query did not return, ...
            self.note_error(context, describe(exc))
            raise AirflowFailException(describe(exc)) from exc
        except Exception as exc:
            if self.final_try(context):
                self.note_error(context, describe(exc))
            raise
        size = path.stat().st_size
        row = self.run_row(context)
        if row is not None:
            report_runs.record_file(
                self.engine, row.id, fmt, file=path.name, size=size, seconds=time.monotonic() - started
            )
        self.log.info("rendered %s: %s (%d bytes)", fmt, path.name, size)
        return {"format": fmt, "file": path.name, "bytes": size}


class ReportDeliverOperator(ReportTaskOperator):
    """One delivery of the report (mapped: one task instance per destination)."""

    ui_color = "#fce8e6"

    def __init__(self, *, delivery: Mapping[str, Any], **kwargs: Any) -> None:
        if kwargs.get("retry_policy") is None:  # unmapping passes unset partial arguments as None
            kwargs["retry_policy"] = RetryAfterPolicy()  # Slack/webhook 429 with Retry-After
        super().__init__(**kwargs)
        self.delivery = dict(delivery)

    def execute(self, context: Any) -> dict[str, Any]:
        self.pin(context)
        delivery = self._pinned_delivery()
        index, kind = int(delivery["index"]), str(delivery["type"])
        _, end = self.interval(context)
        job = self.job(context)

        def material() -> tuple[ReportRunInfo, dict[str, Path]]:
            paths = self._paths(context)  # first: a missing file is a permanent error
            row = self.run_row(context)
            return run_info(job, str(context["run_id"]), row.files if row is not None else {}), paths

        timeout = self.execution_timeout.total_seconds() if self.execution_timeout else MAX_DELIVERY_SECONDS
        try:
            status = send(
                job,
                delivery,
                key=delivery_key(self.report_id, end, index),
                interval_end=end,
                run_id=str(context["run_id"]),
                material=material,
                timeout=timeout,
                final=self.final_try(context),
                log=self.log,
            )
        except PermanentActionError as exc:
            raise AirflowFailException(describe(exc)) from exc
        return {"index": index, "type": kind, "status": status}

    def _pinned_delivery(self) -> dict[str, Any]:
        """This delivery as the pinned spec version has it (the mapped argument is the current one)."""
        index = self.delivery.get("index")
        for candidate in self.spec_params.get("deliveries") or []:
            if isinstance(candidate, dict) and candidate.get("index") == index:
                return dict(candidate)
        return self.delivery

    def _paths(self, context: Mapping[str, Any]) -> dict[str, Path]:
        """Each format's file, by the name its render task reported."""
        workdir = self.workdir(context)
        paths = {}
        for fmt in self.spec_params.get("formats") or []:
            rendered = context["ti"].xcom_pull(task_ids=render_task_id(str(fmt)))
            path = workdir / str(rendered.get("file")) if isinstance(rendered, dict) else None
            if path is None or not path.is_file():
                raise PermanentActionError(
                    f"this run's {fmt} file is missing; clear render_{fmt} to make it again "
                    "(or the whole run, when its folder was removed after the retention)"
                )
            paths[str(fmt)] = path
        return paths


class ReportOutcomeOperator(ReportTaskOperator):
    """Settle the run in the execution log (``all_done``); fail the run when something failed."""

    ui_color = "#f1f3f4"

    def execute(self, context: Any) -> str:
        try:
            return self._settle(context)
        finally:
            sweep(self.dag_id, str(context["run_id"]), self.log)

    def _settle(self, context: Any) -> str:
        self.pin(context)
        row = self.run_row(context)
        if row is None:
            raise AirflowFailException("run_queries did not record this run; see its log")
        if row.status in SETTLED_BEFORE_DELIVERY:
            return row.status
        if row.status == "error":
            raise AirflowFailException(f"the report failed: {row.error}")
        job = self.job(context)
        status, problems, sent = settle(
            job, row, lambda index: delivery_key(self.report_id, row.interval_end, index)
        )
        self.log.info(
            "report %s: %s (%d of %d deliveries sent)", self.report_id, status, sent, len(job.deliveries)
        )
        if problems:
            raise AirflowFailException(f"report {status}: {'; '.join(problems)}")
        return status


def _overrides(context: Mapping[str, Any]) -> dict[str, Any]:
    """Report parameters set by a manual run's ``conf`` (``{"min_total": 500}``); bind_values refuses
    keys the report does not declare."""
    dag_run = context.get("dag_run")
    return dict(getattr(dag_run, "conf", None) or {})
