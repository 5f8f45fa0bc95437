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

import datetime as dt
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from rule_compiler.clock import utcnow
from rule_compiler.compiler.report import DELIVER_TASK, render_task_id
from rule_compiler.errors import PermanentActionError
from rule_compiler.runtime.report_delivery import ReportFile, ReportRunInfo, delivery_key, grace_period
from rule_compiler.store import report_runs
from rule_compiler.store.report_runs import SETTLED_BEFORE_DELIVERY
from rule_engine.hooks.app_database import AppDatabaseHook
from rule_engine.notices import describe
from rule_engine.operators.report_base import ReportTaskOperator, utc
from rule_engine.operators.webhooks import RetryAfterPolicy
from rule_engine.report_sending import Outgoing, deliver, target_of

if TYPE_CHECKING:
    from rule_compiler.reporting.workdir import Manifest, QueryResult

#: Upper bound of one delivery call (SMTP, Slack, webhook), whatever the task's timeout.
MAX_DELIVERY_SECONDS = 60.0


class ReportQueriesOperator(ReportTaskOperator):
    """Run every query of the report into the run's folder; decide whether the run goes on."""

    ui_color = "#e8f0fe"

    def execute(self, context: Any) -> dict[str, Any]:
        from rule_compiler.reporting.queries import ReportQueryRefusedError
        from rule_compiler.reporting.report_errors import ReportAlertError, ReportParameterError

        # no retry can fix these (a timeout or a lost connection is retried)
        permanent_errors = (
            ReportParameterError,
            ReportAlertError,
            ReportQueryRefusedError,
            PermanentActionError,
        )
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
        started = time.monotonic()
        try:
            manifest = self._run_queries(context, overrides, start, end)
            verdict, digest = self._decide(manifest.results, end)
        except Exception as exc:
            permanent = isinstance(exc, permanent_errors)
            if permanent or self.final_try(context):
                report_runs.finish_report_run(self.engine, run_pk, "error", now=utcnow(), error=describe(exc))
            if permanent:
                raise AirflowFailException(describe(exc)) from exc
            raise
        rows = {result.id: result.row_count for result in manifest.results}
        report_runs.record_queries(
            self.engine,
            run_pk,
            queries={r.id: {"rows": r.row_count, "truncated": r.truncated} for r in manifest.results},
            seconds=time.monotonic() - started,
            alert=verdict,
            alert_digest=digest,
        )
        self.log.info("rows per query, %s to %s: %s", manifest.interval_start, manifest.interval_end, rows)
        if verdict is not None and verdict.get("status"):
            status = str(verdict["status"])
            report_runs.finish_report_run(self.engine, run_pk, status, now=utcnow())
            self.log.info("%s: %s; nothing is rendered or delivered", status, verdict["reason"])
            raise AirflowSkipException(f"{status}: {verdict['reason']}")
        return {"spec_hash": self.spec_hash, "rows": rows}

    def _run_queries(
        self, context: Mapping[str, Any], overrides: dict[str, Any], start: dt.datetime, end: dt.datetime
    ) -> Manifest:
        from rule_compiler.reporting.queries import bind_values, json_safe_values, run_query_to_csv
        from rule_compiler.reporting.workdir import Manifest, write_manifest

        parameters = list(self.spec_params.get("parameters") or [])
        logical = utc(self.run_time(context))
        values = bind_values(
            parameters, overrides, interval_start=start, interval_end=end, logical_date=logical
        )
        workdir = self.workdir(context)
        engines: dict[str, sa.Engine] = {}
        results = []
        for query in self.spec_params["queries"]:
            connection = str(query["connection"])
            if connection not in engines:
                engines[connection] = AppDatabaseHook(connection).engine
            results.append(
                run_query_to_csv(
                    engines[connection],
                    str(query["sql"]),
                    values,
                    query_id=str(query["id"]),
                    row_limit=int(query["row_limit"]),
                    timeout=int(query["timeout"]),
                    path=workdir / f"{query['id']}.csv",
                    role=self.query_role(connection),
                )
            )
        names = {str(parameter["name"]) for parameter in parameters}
        spec = self.spec()
        manifest = Manifest(
            report_id=self.report_id,
            interval_start=start.isoformat(),
            interval_end=end.isoformat(),
            logical_date=logical.isoformat(),
            parameters=json_safe_values({k: v for k, v in values.items() if k in names}),
            results=results,
            timezone=(spec.schedule.timezone if spec else None) or "UTC",
        )
        write_manifest(workdir, manifest)
        return manifest

    def _decide(
        self, results: list[QueryResult], end: dt.datetime
    ) -> tuple[dict[str, Any] | None, str | None]:
        """(verdict, digest); a verdict with a ``status`` stops the run (skipped-empty, not-triggered)."""
        from rule_compiler.reporting.alerts import alert_holds

        params = self.spec_params
        if params.get("skip_if_empty") and all(result.row_count == 0 for result in results):
            return {"status": "skipped-empty", "reason": "every query returned no rows (skip_if_empty)"}, None
        alert = params.get("alert")
        if not alert:
            return None, None
        check = alert["check"]
        result = next((r for r in results if r.id == check["query"]), None)
        if result is None:
            raise PermanentActionError(
                f"the alert checks query '{check['query']}', which the report does not run"
            )
        previous = report_runs.previous_alert_digest(self.engine, self.report_id, before=end)
        holds, digest, reason = alert_holds(check, result, previous)
        verdict: dict[str, Any] = {"holds": holds, "reason": reason}
        if not holds:
            return {**verdict, "status": "not-triggered"}, digest
        state = report_runs.alert_state(self.engine, self.report_id)
        grace = grace_period(alert.get("grace_period"))
        if state is not None and state.last_sent_interval_end < end < state.last_sent_interval_end + grace:
            reason = (
                f"{reason}, but it was sent for the interval ending "
                f"{state.last_sent_interval_end.isoformat()}, "
                f"within the grace period ({alert['grace_period']})"
            )
            return {**verdict, "status": "not-triggered", "suppressed": True, "reason": reason}, digest
        return verdict, digest


class ReportRenderOperator(ReportTaskOperator):
    """Render one format from the run's query results."""

    ui_color = "#fef7e0"

    def execute(self, context: Any) -> dict[str, Any]:
        from rule_compiler.reporting.render_format import render_format
        from rule_compiler.reporting.report_errors import ReportRenderError
        from rule_compiler.reporting.workdir import read_manifest

        self.pin(context)
        params = self.spec_params
        fmt = str(params["format"])
        workdir = self.workdir(context)
        started = time.monotonic()
        try:
            path = render_format(
                fmt,
                workdir,
                read_manifest(workdir),
                title=str(params.get("title") or ""),
                description=str(params.get("description") or ""),
                charts=list(params.get("charts") or []),
                template=params.get("template"),
                formats=[str(f) for f in self.task_params(DELIVER_TASK).get("formats") or [fmt]],
                queries=list(params.get("queries") or []),
            )
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
        key = delivery_key(self.report_id, end, index)
        attempt = report_runs.start_report_delivery(
            self.engine,
            key=key,
            report_id=self.report_id,
            interval_end=end,
            index=index,
            type=kind,
            target=target_of(delivery),
            run_id=str(context["run_id"]),
            now=utcnow(),
        )
        summary = {"index": index, "type": kind}
        if attempt is None:
            self.log.info(
                "delivery %d (%s) of this interval was already sent; not sending it again", index, kind
            )
            return {**summary, "status": "already_sent"}
        started = time.monotonic()
        try:
            paths = self._paths(context)  # first: a missing file is a permanent error
            outgoing = Outgoing(key=key, info=self._info(context), paths=paths)
            timeout = (
                self.execution_timeout.total_seconds() if self.execution_timeout else MAX_DELIVERY_SECONDS
            )
            detail = deliver(self.engine, delivery, outgoing, timeout=min(timeout, MAX_DELIVERY_SECONDS))
        except Exception as exc:
            permanent = isinstance(exc, PermanentActionError)
            status: report_runs.DeliveryFinish = (
                "failed" if permanent or self.final_try(context) else "retrying"
            )
            report_runs.finish_report_delivery(
                self.engine, key, status=status, now=utcnow(), error=describe(exc)
            )
            self.log.warning(
                "delivery %d (%s), attempt %d: %s (%s)", index, kind, attempt, describe(exc), status
            )
            if permanent:
                raise AirflowFailException(describe(exc)) from exc
            raise
        detail = {**detail, "seconds": round(time.monotonic() - started, 3)}
        report_runs.finish_report_delivery(self.engine, key, status="sent", now=utcnow(), detail=detail)
        self.log.info("delivery %d (%s) sent on attempt %d", index, kind, attempt)
        return {**summary, "status": "sent"}

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

    def _info(self, context: Mapping[str, Any]) -> ReportRunInfo:
        from rule_compiler.reporting.render_format import template_context
        from rule_compiler.reporting.workdir import read_manifest

        manifest = read_manifest(self.workdir(context))
        row = self.run_row(context)
        formats = [str(fmt) for fmt in self.spec_params.get("formats") or []]
        described = self.task_params(render_task_id(formats[0])) if formats else {}
        title, description = str(described.get("title") or ""), str(described.get("description") or "")
        return ReportRunInfo(
            report_id=self.report_id,
            description=description,
            run_id=str(context["run_id"]),
            interval_start=manifest.interval_start,
            interval_end=manifest.interval_end,
            logical_date=manifest.logical_date,
            parameters=manifest.parameters,
            rows={result.id: result.row_count for result in manifest.results},
            truncated=[result.id for result in manifest.results if result.truncated],
            files=[
                ReportFile(format=fmt, name=str(item["file"]), bytes=int(item["bytes"]))
                for fmt, item in (row.files if row is not None else {}).items()
            ],
            template_context=template_context(
                manifest, title, description, (), formats, query_options=list(described.get("queries") or [])
            ),
        )


class ReportOutcomeOperator(ReportTaskOperator):
    """Settle the run in the execution log (``all_done``); fail the run when something failed."""

    ui_color = "#f1f3f4"

    def execute(self, context: Any) -> str:
        try:
            return self._settle(context)
        finally:
            self._sweep_workdirs(context)

    def _settle(self, context: Any) -> str:
        self.pin(context)
        row = self.run_row(context)
        if row is None:
            raise AirflowFailException("run_queries did not record this run; see its log")
        if row.status in SETTLED_BEFORE_DELIVERY:
            return row.status
        if row.status == "error":
            raise AirflowFailException(f"the report failed: {row.error}")
        deliver_params = self.task_params(DELIVER_TASK)
        formats = [str(fmt) for fmt in deliver_params.get("formats") or row.files]
        wanted = [int(item["index"]) for item in deliver_params.get("deliveries") or []]
        recorded = {
            item.delivery_index: item
            for item in report_runs.deliveries_of(self.engine, self.report_id, row.interval_end)
        }
        sent = [index for index in wanted if index in recorded and recorded[index].status == "sent"]
        problems = [f"render_{fmt} made no file" for fmt in formats if fmt not in row.files]
        for index in wanted:
            if index in sent:
                continue
            item = recorded.get(index)
            problems.append(
                f"delivery {index} ({item.type}) {item.status}: {item.error}"
                if item is not None
                else f"delivery {index} was not attempted"
            )
        status = "success" if not problems else "partial" if sent else "error"
        error = "; ".join([*([row.error] if row.error else []), *problems]) or None
        report_runs.finish_report_run(self.engine, row.id, status, now=utcnow(), error=error)
        if sent and row.alert is not None:
            report_runs.record_alert_sent(
                self.engine,
                self.report_id,
                interval_end=row.interval_end,
                digest=row.alert_digest,
                run_id=row.run_id,
                now=utcnow(),
            )
        self.log.info(
            "report %s: %s (%d of %d deliveries sent)", self.report_id, status, len(sent), len(wanted)
        )
        if problems:
            raise AirflowFailException(f"report {status}: {'; '.join(problems)}")
        return status

    def _sweep_workdirs(self, context: Mapping[str, Any]) -> None:
        """Remove this report's run folders older than the retention, never this run's; a problem
        here is logged, never fails the run."""
        from rule_compiler.reporting.workdir import sweep_run_workdirs, workdir_base, workdir_retention

        try:
            sweep = sweep_run_workdirs(
                workdir_base(),
                self.dag_id,
                keep_run_id=str(context["run_id"]),
                older_than=workdir_retention(),
            )
        except (OSError, ValueError) as exc:
            self.log.warning("old run folders were not removed: %s", describe(exc))
            return
        if sweep.removed:
            self.log.info("removed %d old run folder(s): %s", len(sweep.removed), ", ".join(sweep.removed))
        for name, error in sweep.failed.items():
            self.log.warning("could not remove the old run folder %s: %s", name, error)


def _overrides(context: Mapping[str, Any]) -> dict[str, Any]:
    """Report parameters set by a manual run's ``conf`` (``{"min_total": 500}``); bind_values refuses
    keys the report does not declare."""
    dag_run = context.get("dag_run")
    return dict(getattr(dag_run, "conf", None) or {})
