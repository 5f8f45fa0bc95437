"""``POST /workflows/{name}/test``: the path an event takes through a stored workflow, acting on nothing.

The REST view of ``rule-compiler test-workflow`` (:mod:`rule_compiler.workflow_tester`), as
``POST /rules/{name}/test`` is of ``test-rule``: the stored workflow is checked again against its
organization's catalog and stored definitions (templates expanded), then walked with the event.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, status

from rule_compiler.catalog import Catalog
from rule_compiler.clock import utcnow
from rule_compiler.kinds import WORKFLOW
from rule_compiler.registration import context_from_store
from rule_compiler.rule_tester import RuleTestError, database_related
from rule_compiler.validation import check_document
from rule_compiler.workflow_tester import test_workflow as walk_workflow
from rule_engine.api import definition_ops as ops
from rule_engine.api.deps import StoreDep, Viewer
from rule_engine.api.routes.error_responses import errors
from rule_engine.api.schemas import OutModel, RuleTestRequest
from rule_engine.hooks import app_database

router = APIRouter(prefix="/workflows", tags=["workflows"])
WorkflowName = Annotated[str, Path(max_length=200, description="the workflow's name (a slug)")]


class WorkflowTestRequest(RuleTestRequest):
    """An event to send through a workflow; a schedule/manual trigger with a target takes ``event.new``
    as its row. ``read_related``: read foreign-key paths the event lacks from the trigger's connection."""


class WorkflowTestNode(OutModel):
    """One node's step: ``status`` passed (✓), failed (✗: a condition that does not hold, an action
    that would fail, a trigger that does not take the event) or skipped (it receives nothing)."""

    id: str
    type: str
    status: str
    branch: str | None
    next: list[str]
    summary: str
    trace: dict[str, Any] | None
    action: dict[str, Any] | None


class WorkflowTestResult(OutModel):
    """Whether the event starts a run and every node's step in topological order; ``acted``: the
    action nodes that would act. Nothing was done."""

    workflow: str
    started: bool
    reason: str
    event: dict[str, Any]
    record: dict[str, Any]
    nodes: list[WorkflowTestNode]
    acted: list[str]
    notes: list[str]


@router.post("/{name}/test", responses=errors())
def test_workflow(
    name: WorkflowName, body: WorkflowTestRequest, principal: Viewer, store: StoreDep
) -> WorkflowTestResult:
    """Walk the workflow with an event: each condition's trace and branch, what each action would do
    (templates rendered), waits, approvals (the test follows ``approved``) and the nodes skipped."""
    organization = principal.organization
    stored = store.get(organization=organization, kind=WORKFLOW, name=name)
    catalog = ops.catalog_of(store, organization)
    context = context_from_store(store, organization, stored.source, catalog=catalog)
    validated = check_document(stored.source, context)  # one its catalog no longer allows: 422 with paths
    assert validated.workflow is not None  # noqa: S101 - set for every valid workflow
    related = None
    if body.read_related:  # a connection Airflow cannot give: 503 (the AppDatabaseError handler)
        related = database_related(app_database.engine_for)
    try:
        result = walk_workflow(
            validated.workflow,
            body.event,
            catalog=catalog or Catalog(organization=organization),
            related=related,
            now=body.now or utcnow(),
        )
    except RuleTestError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    return WorkflowTestResult.model_validate(result.as_dict())
