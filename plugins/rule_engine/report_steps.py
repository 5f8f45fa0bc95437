"""The steps of one report run, shared by the report DAG's tasks and by the runs a ``generate_report``
action or a workflow's report node makes: run the queries, decide whether the run goes on, render a
format, say what a delivery tells about the run, send one delivery (recorded before and after each
attempt), settle the run's log.

A :class:`ReportJob` holds what the steps read: the compiled params of the report's tasks (of the
spec version the run uses), the run's folder and the rule store's engine. Delivery keys come from the
caller: the report DAG's ``["report", id, interval end, index]``, an action's or a node's own key
(ADR 0010). ``rule_compiler.reporting`` (matplotlib, openpyxl, the PDF renderer) is imported inside
the steps, so parsing a DAG file stays fast.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from rule_compiler.clock import utcnow
from rule_compiler.compiler.report import DELIVER_TASK, QUERIES_TASK, render_task_id
from rule_compiler.errors import PermanentActionError
from rule_compiler.runtime.report_delivery import ReportFile, ReportRunInfo, grace_period
from rule_compiler.store import report_runs
from rule_engine.hooks.app_database import AppDatabaseHook
from rule_engine.notices import describe
from rule_engine.report_sending import Outgoing, deliver, target_of

if TYPE_CHECKING:
    from rule_compiler.compiler import DagSpec
    from rule_compiler.reporting.workdir import Manifest, QueryResult

#: Upper bound of one delivery call (SMTP, Slack, webhook), whatever the task's timeout.
MAX_DELIVERY_SECONDS = 60.0


@dataclass(frozen=True)
class ReportJob:
    """What the steps of one run read: the report's task params, its folder, the store's engine."""

    engine: sa.Engine
    report_id: str
    #: The compiled params of the report's tasks, by task id (``run_queries``, ``render_csv``, ...).
    tasks: Mapping[str, Mapping[str, Any]]
    timezone: str
    workdir: Path
    #: The restricted role the organization's catalog names for author SQL on a connection.
    query_role: Callable[[str], str | None]

    def params(self, task_id: str) -> dict[str, Any]:
        return dict(self.tasks.get(task_id) or {})

    @property
    def formats(self) -> list[str]:
        return [str(fmt) for fmt in self.params(DELIVER_TASK).get("formats") or []]

    @property
    def deliveries(self) -> list[dict[str, Any]]:
        return [dict(item) for item in self.params(DELIVER_TASK).get("deliveries") or []]


def spec_tasks(spec: DagSpec | None) -> dict[str, dict[str, Any]]:
    """A report spec's task params by task id (empty when the spec is gone)."""
    return {task.task_id: dict(task.params) for task in spec.tasks} if spec is not None else {}


def run_queries(
    job: ReportJob,
    overrides: Mapping[str, Any],
    start: dt.datetime,
    end: dt.datetime,
    logical: dt.datetime,
) -> Manifest:
    """Stream each query's rows to a CSV file in the run's folder and write the manifest."""
    from rule_compiler.reporting.queries import bind_values, json_safe_values, run_query_to_csv
    from rule_compiler.reporting.workdir import Manifest, write_manifest

    params = job.params(QUERIES_TASK)
    parameters = list(params.get("parameters") or [])
    values = bind_values(parameters, overrides, interval_start=start, interval_end=end, logical_date=logical)
    engines: dict[str, sa.Engine] = {}
    results = []
    for query in params["queries"]:
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
                path=job.workdir / f"{query['id']}.csv",
                role=job.query_role(connection),
            )
        )
    names = {str(parameter["name"]) for parameter in parameters}
    manifest = Manifest(
        report_id=job.report_id,
        interval_start=start.isoformat(),
        interval_end=end.isoformat(),
        logical_date=logical.isoformat(),
        parameters=json_safe_values({k: v for k, v in values.items() if k in names}),
        results=results,
        timezone=job.timezone,
    )
    write_manifest(job.workdir, manifest)
    return manifest


def decide(
    job: ReportJob, results: list[QueryResult], end: dt.datetime, *, grace: bool = True
) -> tuple[dict[str, Any] | None, str | None]:
    """(verdict, digest); a verdict with a ``status`` stops the run (skipped-empty, not-triggered).
    ``grace``: whether the alert's grace period (the report's own alert state) applies."""
    from rule_compiler.reporting.alerts import alert_holds

    params = job.params(QUERIES_TASK)
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
    previous = report_runs.previous_alert_digest(job.engine, job.report_id, before=end)
    holds, digest, reason = alert_holds(check, result, previous)
    verdict: dict[str, Any] = {"holds": holds, "reason": reason}
    if not holds:
        return {**verdict, "status": "not-triggered"}, digest
    state = report_runs.alert_state(job.engine, job.report_id) if grace else None
    period = grace_period(alert.get("grace_period"))
    if state is not None and state.last_sent_interval_end < end < state.last_sent_interval_end + period:
        reason = (
            f"{reason}, but it was sent for the interval ending "
            f"{state.last_sent_interval_end.isoformat()}, "
            f"within the grace period ({alert['grace_period']})"
        )
        return {**verdict, "status": "not-triggered", "suppressed": True, "reason": reason}, digest
    return verdict, digest


@dataclass(frozen=True)
class QueryStep:
    """What the queries gave: the manifest, and the status that stopped the run here (skipped-empty,
    not-triggered; None: it goes on to render and deliver) with its reason."""

    manifest: Manifest
    stopped: str | None = None
    reason: str = ""


def query_step(
    job: ReportJob,
    run_pk: int,
    overrides: Mapping[str, Any],
    interval: tuple[dt.datetime, dt.datetime],
    logical: dt.datetime,
    *,
    final: bool,
    grace: bool = True,
) -> QueryStep:
    """Run the queries and decide, recorded in the run's log (a run the verdict stops is settled).

    A failure no retry can fix (a refused query, a bad parameter, an alert on a query the report does
    not run) settles the run as ``error`` and is raised as ``PermanentActionError``; another failure
    settles it only on the ``final`` try and is raised as it is (a timeout, a lost connection)."""
    from rule_compiler.reporting.queries import ReportQueryRefusedError
    from rule_compiler.reporting.report_errors import ReportAlertError, ReportParameterError

    permanent_errors = (ReportParameterError, ReportAlertError, ReportQueryRefusedError, PermanentActionError)
    start, end = interval
    started = time.monotonic()
    try:
        manifest = run_queries(job, dict(overrides), start, end, logical)
        verdict, digest = decide(job, manifest.results, end, grace=grace)
    except Exception as exc:
        permanent = isinstance(exc, permanent_errors)
        if permanent or final:
            report_runs.finish_report_run(job.engine, run_pk, "error", now=utcnow(), error=describe(exc))
        if permanent:
            raise PermanentActionError(describe(exc)) from exc
        raise
    report_runs.record_queries(
        job.engine,
        run_pk,
        queries={r.id: {"rows": r.row_count, "truncated": r.truncated} for r in manifest.results},
        seconds=time.monotonic() - started,
        alert=verdict,
        alert_digest=digest,
    )
    if verdict is None or not verdict.get("status"):
        return QueryStep(manifest)
    status = str(verdict["status"])
    report_runs.finish_report_run(job.engine, run_pk, status, now=utcnow())
    return QueryStep(manifest, status, str(verdict["reason"]))


def render(job: ReportJob, fmt: str) -> Path:
    """Render ``fmt`` from the run's query results (ReportRenderError: the report cannot be rendered)."""
    from rule_compiler.reporting.render_format import render_format
    from rule_compiler.reporting.workdir import read_manifest

    params = job.params(render_task_id(fmt))
    return render_format(
        fmt,
        job.workdir,
        read_manifest(job.workdir),
        title=str(params.get("title") or ""),
        description=str(params.get("description") or ""),
        charts=list(params.get("charts") or []),
        template=params.get("template"),
        formats=job.formats or [fmt],
        queries=list(params.get("queries") or []),
    )


def run_info(job: ReportJob, run_id: str, files: Mapping[str, Any]) -> ReportRunInfo:
    """What the deliveries say about the run (``files``: the run row's, by format)."""
    from rule_compiler.reporting.render_format import template_context
    from rule_compiler.reporting.workdir import read_manifest

    manifest = read_manifest(job.workdir)
    formats = job.formats
    described = job.params(render_task_id(formats[0])) if formats else {}
    title, description = str(described.get("title") or ""), str(described.get("description") or "")
    return ReportRunInfo(
        report_id=job.report_id,
        description=description,
        run_id=run_id,
        interval_start=manifest.interval_start,
        interval_end=manifest.interval_end,
        logical_date=manifest.logical_date,
        parameters=manifest.parameters,
        rows={result.id: result.row_count for result in manifest.results},
        truncated=[result.id for result in manifest.results if result.truncated],
        files=[
            ReportFile(format=fmt, name=str(item["file"]), bytes=int(item["bytes"]))
            for fmt, item in files.items()
        ],
        template_context=template_context(
            manifest, title, description, (), formats, query_options=list(described.get("queries") or [])
        ),
    )


def send(
    job: ReportJob,
    delivery: Mapping[str, Any],
    *,
    key: str,
    interval_end: dt.datetime,
    run_id: str,
    material: Callable[[], tuple[ReportRunInfo, Mapping[str, Path]]],
    timeout: float,
    final: bool,
    log: logging.Logger | Any,
) -> str:
    """Send one delivery under ``key`` unless it was sent: ``sent`` or ``already_sent``. Each attempt is
    recorded before and after it; a failure is re-raised (recorded ``failed`` when it is permanent or
    ``final``, else ``retrying``). ``material``: the run's info and files by format, read when needed."""
    index, kind = int(delivery["index"]), str(delivery["type"])
    attempt = report_runs.start_report_delivery(
        job.engine,
        key=key,
        report_id=job.report_id,
        interval_end=interval_end,
        index=index,
        type=kind,
        target=target_of(delivery),
        run_id=run_id,
        now=utcnow(),
    )
    if attempt is None:
        log.info("delivery %d (%s) was already sent; not sending it again", index, kind)
        return "already_sent"
    started = time.monotonic()
    try:
        info, paths = material()  # first: a missing file is a permanent error
        outgoing = Outgoing(key=key, info=info, paths=paths)
        detail = deliver(job.engine, delivery, outgoing, timeout=min(timeout, MAX_DELIVERY_SECONDS))
    except Exception as exc:
        permanent = isinstance(exc, PermanentActionError)
        status: report_runs.DeliveryFinish = "failed" if permanent or final else "retrying"
        report_runs.finish_report_delivery(job.engine, key, status=status, now=utcnow(), error=describe(exc))
        log.warning("delivery %d (%s), attempt %d: %s (%s)", index, kind, attempt, describe(exc), status)
        raise
    detail = {**detail, "seconds": round(time.monotonic() - started, 3)}
    report_runs.finish_report_delivery(job.engine, key, status="sent", now=utcnow(), detail=detail)
    log.info("delivery %d (%s) sent on attempt %d", index, kind, attempt)
    return "sent"


def settle(
    job: ReportJob,
    row: report_runs.ReportRun,
    key_of: Callable[[int], str],
    *,
    alert_state: bool = True,
) -> tuple[str, list[str], int]:
    """Settle a run that rendered and delivered: (status, problems, deliveries sent). Each delivery is
    read by its key (``key_of(index)``): another run's delivery of the interval is not this run's.
    ``alert_state``: whether a sent alert moves the report's alert state (its grace period)."""
    formats = job.formats or list(row.files)
    wanted = [int(item["index"]) for item in job.deliveries]
    recorded = {index: report_runs.get_report_delivery(job.engine, key_of(index)) for index in wanted}
    sent = [index for index, item in recorded.items() if item is not None and item.status == "sent"]
    problems = [f"render_{fmt} made no file" for fmt in formats if fmt not in row.files]
    for index in wanted:
        item = recorded[index]
        if index in sent:
            continue
        problems.append(
            f"delivery {index} ({item.type}) {item.status}: {item.error}"
            if item is not None
            else f"delivery {index} was not attempted"
        )
    status = "success" if not problems else "partial" if sent else "error"
    error = "; ".join([*([row.error] if row.error else []), *problems]) or None
    report_runs.finish_report_run(job.engine, row.id, status, now=utcnow(), error=error)
    if alert_state and sent and row.alert is not None:
        report_runs.record_alert_sent(
            job.engine,
            job.report_id,
            interval_end=row.interval_end,
            digest=row.alert_digest,
            run_id=row.run_id,
            now=utcnow(),
        )
    return status, problems, len(sent)


def sweep_workdirs(dag_id: str, keep_run_id: str, log: logging.Logger | Any) -> None:
    """Remove the report's run folders older than the retention, never ``keep_run_id``'s; a problem
    here is logged, never fails the run."""
    from rule_compiler.reporting.workdir import sweep_run_workdirs, workdir_base, workdir_retention

    try:
        sweep = sweep_run_workdirs(
            workdir_base(), dag_id, keep_run_id=keep_run_id, older_than=workdir_retention()
        )
    except (OSError, ValueError) as exc:
        log.warning("old run folders were not removed: %s", describe(exc))
        return
    if sweep.removed:
        log.info("removed %d old run folder(s): %s", len(sweep.removed), ", ".join(sweep.removed))
    for name, error in sweep.failed.items():
        log.warning("could not remove the old run folder %s: %s", name, error)
