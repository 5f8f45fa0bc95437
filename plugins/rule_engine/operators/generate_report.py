"""``generate_report`` and a workflow's report node: run a stored report once per occurrence (ADR 0010).

The report is read at run time from the rule store: its current compiled spec holds what its tasks
run. One report run per action and occurrence (``generated__<32 hex of the effect's key>`` in the
report's execution log, its folder beside the report's own runs) runs the queries, renders each
format and delivers, all in this task, through the steps the report DAG's tasks use
(:mod:`rule_engine.report_steps`). Its deliveries are keyed by the effect's key with the
destination's index, never by the report's own ``["report", id, interval end, index]``: the report's
scheduled runs and this action do not suppress each other, and a retry or a repeated occurrence
sends nothing twice. The alert's grace period is the report's own: a generated run neither reads nor
moves it (its alert check still decides, as ``skip_if_empty`` does).

The interval: a report node of a workflow on an interval timetable (schedule and data triggers)
reads the run's data interval; otherwise (a rule's action, an event or manual workflow) it is the last
complete interval of the report's own schedule before the run's logical time (its ``run_after`` when
it has none), what the report's Trigger button reads at that moment.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rule_compiler.clock import utcnow
from rule_compiler.compiler import DagSpec
from rule_compiler.errors import NotFoundError, PermanentActionError
from rule_compiler.runtime.idempotency import generated_delivery_key, generated_run_id
from rule_compiler.runtime.report_delivery import ReportRunInfo
from rule_compiler.store import report_runs
from rule_engine.notices import describe
from rule_engine.operators.actions import ActionOperator, Match
from rule_engine.operators.report_base import last_complete_interval, utc
from rule_engine.operators.trigger_workflow import by_occurrence
from rule_engine.report_steps import (
    MAX_DELIVERY_SECONDS,
    ReportJob,
    query_step,
    render,
    run_info,
    send,
    settle,
    spec_tasks,
    sweep_workdirs,
)

KIND = "report"


class GenerateReportOperator(ActionOperator):
    """Run the stored report once per occurrence (not per item), with the action's ``parameters``."""

    ui_color = "#e6f4ea"
    #: Whether a run with a data interval reports that interval (a workflow's report node).
    reads_run_interval = False

    def run_action(self, context: Any, matches: list[Match]) -> dict[str, Any]:
        runs = []
        counts = {"sent": 0, "already_sent": 0}
        for occurrence in by_occurrence(matches):
            key = Match(None, occurrence).effect_key(self.rule_id, self.task_id, kind=self.definition_kind)
            run = self.generate(context, key)
            for name in counts:
                counts[name] += int(run.pop(name, 0))
            runs.append(run)
        return {"report": self.report_id, **counts, "runs": runs}

    @property
    def report_id(self) -> str:
        return f"{self.rule_id.split('/', 1)[0]}/{self.spec_params['report']}"

    def generate(self, context: Any, key: str) -> dict[str, Any]:
        """One report run under the effect's ``key``: its id, status, interval and delivery counts."""
        from rule_compiler.reporting.workdir import run_workdir, workdir_base

        organization, name = self.report_id.split("/", 1)
        try:
            stored = self.store.get(organization=organization, kind=KIND, name=name)
        except NotFoundError:
            raise PermanentActionError(
                f"report '{name}' is not stored (any more); store it again or remove this action"
            ) from None
        spec = DagSpec.model_validate_json(stored.spec_json)
        run_id = generated_run_id(key)
        job = ReportJob(
            engine=self.store.engine,
            report_id=self.report_id,
            tasks=spec_tasks(spec),
            timezone=spec.schedule.timezone or "UTC",
            workdir=run_workdir(workdir_base(), spec.dag_id, run_id),
            query_role=self.query_role,
        )
        start, end = self.report_interval(context, spec)
        overrides = {k: v for k, v in (self.spec_params.get("parameters") or {}).items() if v is not None}
        row = report_runs.start_report_run(
            job.engine,
            report_id=self.report_id,
            dag_id=spec.dag_id,
            run_id=run_id,
            spec_hash=stored.spec_hash,
            interval_start=start,
            interval_end=end,
            logical_date=utc(self.run_time(context)),
            parameters=overrides,
            now=utcnow(),
        )
        self.log.info("report %s, run %s: %s to %s", self.report_id, run_id, start, end)
        summary: dict[str, Any] = {
            "run_id": run_id,
            "interval_start": start.isoformat(),
            "interval_end": end.isoformat(),
        }
        try:
            status = self._queries(context, job, row, overrides, (start, end))
            if status is None:
                self._render_formats(context, job, row)
                summary.update(self._deliver(context, job, (spec.dag_id, run_id), key, end))
                status = self._settle(job, spec.dag_id, run_id, key)
        finally:
            sweep_workdirs(spec.dag_id, run_id, self.log)
        return {**summary, "status": status}

    def report_interval(self, context: Mapping[str, Any], spec: DagSpec) -> tuple[dt.datetime, dt.datetime]:
        """The interval this run reports (see the module's docstring)."""
        start, end = context.get("data_interval_start"), context.get("data_interval_end")
        if self.reads_run_interval and start and end and utc(start) < utc(end):
            return utc(start), utc(end)
        moment = utc(self.run_time(context))
        if not spec.schedule.cron:
            return moment, moment
        return last_complete_interval(spec.schedule.cron, spec.schedule.timezone or "UTC", moment)

    def _final(self, context: Mapping[str, Any]) -> bool:
        return int(context["ti"].try_number) > int(self.retries or 0)

    def _queries(
        self,
        context: Mapping[str, Any],
        job: ReportJob,
        run_pk: int,
        overrides: dict[str, Any],
        interval: tuple[dt.datetime, dt.datetime],
    ) -> str | None:
        """Run the queries and decide: the run's settled status when it stops here, else None."""
        step = query_step(
            job,
            run_pk,
            overrides,
            interval,
            utc(self.run_time(context)),
            final=self._final(context),
            grace=False,
        )
        if step.stopped is not None:
            self.log.info("%s: %s; nothing is rendered or delivered", step.stopped, step.reason)
        return step.stopped

    def _render_formats(self, context: Mapping[str, Any], job: ReportJob, run_pk: int) -> None:
        from rule_compiler.reporting.report_errors import ReportRenderError

        for fmt in job.formats:
            started = time.monotonic()
            try:
                path = render(job, fmt)
            except Exception as exc:
                permanent = isinstance(exc, ReportRenderError)
                if permanent or self._final(context):
                    report_runs.finish_report_run(
                        job.engine, run_pk, "error", now=utcnow(), error=f"render_{fmt}: {describe(exc)}"
                    )
                if permanent:
                    raise PermanentActionError(describe(exc)) from exc
                raise
            size = path.stat().st_size
            report_runs.record_file(
                job.engine, run_pk, fmt, file=path.name, size=size, seconds=time.monotonic() - started
            )
            self.log.info("rendered %s: %s (%d bytes)", fmt, path.name, size)

    def _deliver(
        self,
        context: Mapping[str, Any],
        job: ReportJob,
        run: tuple[str, str],
        key: str,
        end: dt.datetime,
    ) -> dict[str, int]:
        """Every delivery, each under its own key; a retryable failure is raised after the others were
        tried (the next try sends only what is not sent), a permanent one is settled as the outcome."""
        dag_id, run_id = run

        def material() -> tuple[ReportRunInfo, dict[str, Path]]:
            row = report_runs.get_report_run(job.engine, dag_id=dag_id, run_id=run_id)
            files = row.files if row is not None else {}
            paths = {fmt: job.workdir / str(files[fmt]["file"]) for fmt in job.formats if fmt in files}
            return run_info(job, run_id, files), paths

        counts = {"sent": 0, "already_sent": 0}
        retry: Exception | None = None
        final = self._final(context)
        timeout = self.execution_timeout.total_seconds() if self.execution_timeout else MAX_DELIVERY_SECONDS
        for delivery in job.deliveries:
            try:
                outcome = send(
                    job,
                    delivery,
                    key=generated_delivery_key(key, int(delivery["index"])),
                    interval_end=end,
                    run_id=run_id,
                    material=material,
                    timeout=timeout,
                    final=final,
                    log=self.log,
                )
            except PermanentActionError:
                continue  # recorded as failed; the outcome names it
            except Exception as exc:
                if not final:
                    retry = retry or exc
                continue
            counts[outcome] += 1
        if retry is not None:
            raise retry
        return counts

    def _settle(self, job: ReportJob, dag_id: str, run_id: str, key: str) -> str:
        row = report_runs.get_report_run(job.engine, dag_id=dag_id, run_id=run_id)
        if row is None:
            raise PermanentActionError(f"report run {run_id} was not recorded")
        status, problems, sent = settle(
            job, row, lambda index: generated_delivery_key(key, index), alert_state=False
        )
        self.log.info(
            "report %s: %s (%d of %d deliveries sent)", job.report_id, status, sent, len(job.deliveries)
        )
        if problems:
            raise PermanentActionError(f"report {status}: {'; '.join(problems)}")
        return status


class WorkflowReportOperator(GenerateReportOperator):
    """A workflow's report node: runs the report once per run for the workflow's interval, records its
    outcome under its node id and passes on every item it received."""

    reads_run_interval = True
    takes_on_failure = False

    def matches(self, context: Any, evaluation: Mapping[str, Any]) -> list[Match]:
        return [Match(None, self.occurrence_id(context))]
