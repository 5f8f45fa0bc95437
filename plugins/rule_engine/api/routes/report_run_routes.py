"""``/reports`` routes of reports alone: ``GET /reports/{name}/next-runs``, ``POST /reports/{name}/trigger``
(a run through Airflow with parameter overrides) and ``GET /reports/{name}/runs`` (the report execution
log). The rest of ``/reports`` is the one resource router (:mod:`rule_engine.api.resource_router`)."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request, status
from fastapi.exceptions import RequestValidationError

from rule_compiler.clock import utcnow
from rule_compiler.kinds import REPORT
from rule_compiler.reporting.queries import coerce
from rule_compiler.reporting.report_errors import ReportParameterError
from rule_compiler.sql_check import QUERY_PARAMETERS
from rule_compiler.store import RuleStore, StoredDefinition, report_runs
from rule_engine.api import airflow_runs
from rule_engine.api import definition_ops as ops
from rule_engine.api.deps import Editor, StoreDep, Viewer
from rule_engine.api.routes.error_responses import errors
from rule_engine.api.run_trigger import refuse_inactive, start_audited_run, started_fields, trigger_responses
from rule_engine.api.schemas import NextRuns, Page
from rule_engine.api.schemas_reports import (
    QueryRows,
    ReportDeliveryPublic,
    ReportFile,
    ReportRunPublic,
    ReportRunStarted,
    ReportRunStatus,
    ReportTriggerRequest,
)

MAX_RUNS_PAGE = 100

router = APIRouter(prefix="/reports", tags=["reports"])
log = logging.getLogger("rule_engine.api")
KIND = REPORT
ReportName = Annotated[str, Path(max_length=200, description="the report's name (a slug)")]


def _current(store: RuleStore, organization: str, name: str) -> StoredDefinition:
    return store.get(organization=organization, kind=KIND, name=name)


def _overrides(source: dict[str, Any], payload: dict[str, Any] | None) -> dict[str, Any]:
    """The run's conf: the payload's parameter overrides, each checked against the report's
    parameters (422 at ``payload.<name>``) as the run's query task would."""
    conf = airflow_runs.run_conf("schedule", payload)  # the size cap
    declared = {str(p["name"]): str(p["type"]) for p in source.get("parameters") or []}
    problems = []
    for key, value in conf.items():
        if key in QUERY_PARAMETERS:
            message = f"'{key}' is set by the run itself and cannot be overridden"
        elif key not in declared:
            known = ", ".join(sorted(declared)) or "none"
            message = f"the report has no parameter '{key}' (its parameters: {known})"
        elif value is None:
            continue
        else:
            try:
                coerce(declared[key], value, key)
                continue
            except ReportParameterError as exc:
                message = str(exc)
        problems.append({"loc": ("body", "payload", key), "msg": message, "type": "parameter"})
    if problems:
        raise RequestValidationError(problems)
    return conf


@router.post("/{name}/trigger", status_code=status.HTTP_201_CREATED, responses=trigger_responses("report"))
def trigger_report(
    name: ReportName,
    principal: Editor,
    store: StoreDep,
    request: Request,
    body: Annotated[ReportTriggerRequest | None, Body()] = None,
) -> ReportRunStarted:
    """Run the report now through Airflow (over the last complete interval of its schedule);
    ``payload`` overrides its parameters and becomes the run's conf (audited)."""
    stored = _current(store, principal.organization, name)
    refuse_inactive(stored, "/reports")
    trigger = body or ReportTriggerRequest()
    conf = _overrides(stored.source, trigger.payload)
    started = start_audited_run(
        store=store,
        principal=principal,
        request=request,
        stored=stored,
        conf=conf,
        note=trigger.note,
        what="report",
        audit_kind="report_run",
    )
    return ReportRunStarted(report=name, **started_fields(started, stored, conf, principal))


def _run_public(
    run: report_runs.ReportRun, deliveries: list[report_runs.ReportDeliveryRow]
) -> ReportRunPublic:
    queries = {
        key: QueryRows(rows=int(value.get("rows", 0)), truncated=bool(value.get("truncated", False)))
        for key, value in run.queries.items()
        if isinstance(value, dict)
    }
    files = {
        fmt: ReportFile(
            file=str(value.get("file", "")), bytes=int(value.get("bytes", 0)), seconds=value.get("seconds")
        )
        for fmt, value in run.files.items()
        if isinstance(value, dict)
    }
    return ReportRunPublic(
        id=run.id,
        dag_id=run.dag_id,
        run_id=run.run_id,
        spec_hash=run.spec_hash,
        status=run.status,
        interval_start=run.interval_start,
        interval_end=run.interval_end,
        logical_date=run.logical_date,
        parameters=run.parameters,
        queries=queries,
        files=files,
        steps=run.steps,
        alert=run.alert,
        error=run.error,
        started_at=run.started_at,
        finished_at=run.finished_at,
        deliveries=[
            ReportDeliveryPublic(
                index=d.delivery_index,
                type=d.type,
                target=d.target,
                status=d.status,
                attempts=d.attempts,
                run_id=d.run_id,
                error=d.error,
                detail=d.detail if isinstance(d.detail, dict) else None,
                updated_at=d.updated_at,
                sent_at=d.sent_at,
            )
            for d in deliveries
        ],
    )


@router.get("/{name}/runs", responses=errors())
def list_report_runs(
    *,
    name: ReportName,
    principal: Viewer,
    store: StoreDep,
    status_: Annotated[ReportRunStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_RUNS_PAGE)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Page[ReportRunPublic]:
    """Recent runs from the report execution log, newest first: status, rows per query, file sizes
    and how each delivery of the run's interval went (a rerun of an interval shows its deliveries)."""
    _current(store, principal.organization, name)  # other organizations' and deleted reports: 404
    runs = report_runs.list_report_runs(
        store.engine,
        organization=principal.organization,
        report_name=name,
        status=status_,
        limit=limit + 1,
        offset=offset,
    )
    items = [_run_public(run, report_runs.deliveries_of_run(store.engine, run)) for run in runs[:limit]]
    return Page[ReportRunPublic](items=items, limit=limit, offset=offset, has_more=len(runs) > limit)


@router.get("/{name}/next-runs", responses=errors())
def next_report_runs(
    name: ReportName,
    principal: Viewer,
    store: StoreDep,
    count: Annotated[int, Query(ge=1, le=ops.MAX_NEXT_RUNS)] = 5,
) -> NextRuns:
    """When the report runs next, in its time zone (each run reads the interval since the one before)."""
    schedule = ops.schedule_of(_current(store, principal.organization, name).source)
    assert schedule is not None  # noqa: S101 - every report has a schedule
    cron, timezone = schedule
    runs = ops.next_runs(cron, timezone, count, utcnow())
    return NextRuns(name=name, cron=cron, timezone=timezone, runs=runs)
