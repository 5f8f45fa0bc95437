"""``/rules`` routes of rules alone: test a rule against an event, its next run times, and a run now.

The rest of ``/rules`` (list, create, validate, get, replace, patch, delete, spec, versions, diff,
restore) is the one resource router (:mod:`rule_engine.api.resource_router`) every kind shares.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, Path, Query, Request, status

from rule_compiler import rule_tester
from rule_compiler.catalog import Catalog
from rule_compiler.clock import utcnow
from rule_compiler.kinds import RULE
from rule_compiler.registration import Compiled
from rule_compiler.store import RuleStore, StoredDefinition
from rule_engine.api import airflow_runs
from rule_engine.api import definition_ops as ops
from rule_engine.api.deps import Editor, StoreDep, Viewer
from rule_engine.api.routes.error_responses import errors
from rule_engine.api.run_trigger import refuse_inactive, start_audited_run, started_fields, trigger_responses
from rule_engine.api.schemas import NextRuns, RuleTestRequest, RuleTestResult
from rule_engine.api.schemas_ops import RunStarted, TriggerRequest
from rule_engine.hooks import app_database

router = APIRouter(prefix="/rules", tags=["rules"])
RuleName = Annotated[str, Path(max_length=200, description="the rule's name (a slug)")]


def _current(store: RuleStore, organization: str, name: str) -> StoredDefinition:
    return store.get(organization=organization, kind=RULE, name=name)


@router.post("/{name}/test", responses=errors())
def test_rule(name: RuleName, body: RuleTestRequest, principal: Viewer, store: StoreDep) -> RuleTestResult:
    """Evaluate the rule's conditions against an event (or a target row) and return the trace."""
    stored = _current(store, principal.organization, name)
    compiled = ops.compile_for(store, principal.organization, stored.source)
    assert isinstance(compiled, Compiled) and compiled.rule is not None  # noqa: S101 - a stored rule
    catalog = ops.catalog_of(store, principal.organization) or Catalog(organization=principal.organization)
    related = None
    if body.read_related:  # a connection Airflow cannot give: 503 (the AppDatabaseError handler)
        related = rule_tester.database_related(app_database.engine_for)
    try:
        result = rule_tester.test_rule(
            compiled.rule,
            body.event,
            catalog=catalog,
            related=related,
            now=body.now or utcnow(),
        )
    except rule_tester.RuleTestError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    return RuleTestResult(**result.as_dict())


@router.get("/{name}/next-runs", responses=errors(409))
def next_rule_runs(
    name: RuleName,
    principal: Viewer,
    store: StoreDep,
    count: Annotated[int, Query(ge=1, le=ops.MAX_NEXT_RUNS)] = 5,
) -> NextRuns:
    """When a scheduled (or data) rule runs next, in its time zone."""
    source = ops.expanded_source(store, _current(store, principal.organization, name))
    schedule = ops.schedule_of(source)
    if schedule is None:
        kind = ops.trigger_type(source)
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"rule '{name}' has a {kind} trigger: it has no schedule"
        )
    cron, timezone = schedule
    runs = ops.next_runs(cron, timezone, count, utcnow())
    return NextRuns(name=name, cron=cron, timezone=timezone, runs=runs)


@router.post("/{name}/trigger", status_code=status.HTTP_201_CREATED, responses=trigger_responses("rule"))
def trigger_rule(
    name: RuleName,
    principal: Editor,
    store: StoreDep,
    request: Request,
    body: Annotated[TriggerRequest | None, Body()] = None,
) -> RunStarted:
    """Start a run now through Airflow; ``payload`` becomes the run's conf (audited)."""
    stored = _current(store, principal.organization, name)
    refuse_inactive(stored, "/rules")
    trigger = body or TriggerRequest()
    conf = airflow_runs.run_conf(ops.trigger_type(ops.expanded_source(store, stored)), trigger.payload)
    started = start_audited_run(
        store=store,
        principal=principal,
        request=request,
        stored=stored,
        conf=conf,
        note=trigger.note,
        what="rule",
        audit_kind="run",
    )
    return RunStarted(rule=name, **started_fields(started, stored, conf, principal))
