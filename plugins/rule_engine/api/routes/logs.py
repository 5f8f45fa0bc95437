"""``/logs``: your organization's automation log — list with filters, one run in detail."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query, status
from pydantic import BeforeValidator

from rule_compiler.store import RunLog, RunQuery
from rule_compiler.store.run_queries import key_filter
from rule_compiler.store.tables import RUN_STATUSES
from rule_engine.api.deps import StoreDep, Viewer
from rule_engine.api.routes.error_responses import errors
from rule_engine.api.schemas import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    ActionResultPublic,
    Page,
    RunDetail,
    RunPublic,
)

router = APIRouter(prefix="/logs", tags=["logs"])

RunStatusName = Literal["running", "no_match", "success", "failed", "partial"]
RunSort = Literal[
    "started_at", "-started_at", "finished_at", "-finished_at", "status", "-status", "rule_name", "-rule_name"
]
assert set(RunStatusName.__args__) == set(RUN_STATUSES)  # type: ignore[attr-defined]  # noqa: S101


def _iso_only(value: object) -> object:
    """Refuse what pydantic would also read as a time (Unix timestamps such as ``0``): ISO 8601 only."""
    if isinstance(value, str) and not _ISO_DATE.match(value):
        raise ValueError("give an ISO 8601 date-time such as 2026-11-20T12:00:00Z")
    return value


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
IsoDateTime = Annotated[dt.datetime, BeforeValidator(_iso_only)]


def _public(run: RunLog) -> RunPublic:
    return RunPublic(
        id=run.id,
        rule_name=run.rule_name,
        dag_id=run.dag_id,
        run_id=run.run_id,
        status=run.status,
        trigger_type=run.trigger_type,
        matched_count=run.matched_count,
        spec_hash=run.spec_hash,
        started_at=run.started_at,
        finished_at=run.finished_at,
        actions=[
            ActionResultPublic(
                action_id=a.action_id,
                status=a.status,
                attempts=a.attempts,
                output=a.output,
                error=a.error,
                updated_at=a.updated_at,
            )
            for a in run.actions
        ],
    )


@router.get("", responses=errors())
def list_logs(
    *,
    principal: Viewer,
    store: StoreDep,
    rule: Annotated[str | None, Query(max_length=200, description="a rule name")] = None,
    status_: Annotated[list[RunStatusName] | None, Query(alias="status", description="any of these")] = None,
    since: Annotated[IsoDateTime | None, Query(description="runs started at or after (ISO 8601)")] = None,
    until: Annotated[IsoDateTime | None, Query(description="runs started before (ISO 8601)")] = None,
    run_id: Annotated[str | None, Query(max_length=250, description="an Airflow run id")] = None,
    dag_id: Annotated[
        str | None, Query(max_length=250, description="one DAG's runs (with run_id: one run, by index)")
    ] = None,
    table: Annotated[
        str | None, Query(max_length=128, description="runs that matched an item of this table")
    ] = None,
    key: Annotated[
        str | None,
        Query(max_length=400, description="...with this key: `42`, `[42]` or the JSON the log shows"),
    ] = None,
    actor: Annotated[
        str | None,
        Query(max_length=200, description="runs triggered by this user's change or call (ADR 0013)"),
    ] = None,
    sort: RunSort = "-started_at",
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Page[RunPublic]:
    """Runs of your organization's automations, newest first unless sorted otherwise."""
    since, until = as_utc(since), as_utc(until)
    if since is not None and until is not None and since >= until:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "`since` must be before `until`")
    query = RunQuery(
        organization=principal.organization,
        rule_name=rule,
        statuses=status_,
        started_after=since,
        started_before=until,
        run_id=run_id,
        dag_id=dag_id,
        table=table,
        key=None if key is None else key_filter(key),
        actor=actor,
    )
    page = store.query_runs(query, sort=sort, limit=limit, offset=offset)
    return Page[RunPublic](
        items=[_public(run) for run in page.runs], limit=limit, offset=offset, has_more=page.has_more
    )


@router.get("/{log_id}", responses=errors())
def get_log(log_id: Annotated[int, Path(ge=1, le=2**62)], principal: Viewer, store: StoreDep) -> RunDetail:
    """One run: trigger context, the condition trace, and each action's attempts, output and error."""
    run = store.get_run_in(principal.organization, log_id)
    if run is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no automation run {log_id} in your organization")
    trigger_context = run.trigger_context if isinstance(run.trigger_context, dict) else {}
    return RunDetail(**_public(run).model_dump(), trigger_context=trigger_context, trace=run.trace)


def as_utc(value: dt.datetime | None) -> dt.datetime | None:
    """A query's time: one without an offset is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)
