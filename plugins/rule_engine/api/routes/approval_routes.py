"""``/approvals``: the approvals inbox of waiting workflows and the organization-scoped answer route
(ADR 0011); a waiting run is cancelled with ``POST /workflows/{name}/runs/{run_id}/cancel``
(routes/definition_run_routes.py).

Airflow's own answer route needs DAG edit permission on every organization's DAGs; this one lets the
assignees of an approval (members of its organization) answer it, and records the answer in the
automation log (the node's entry, when the task resumes) and the audit log.
"""

# Route functions' annotations must be real objects for FastAPI: no `from __future__ import annotations`.
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request, status
from sqlalchemy.exc import SQLAlchemyError

from rule_compiler.errors import NotFoundError
from rule_compiler.store import Approval
from rule_engine.api import airflow_approvals
from rule_engine.api.deps import StoreDep, Viewer
from rule_engine.api.routes.error_responses import airflow_unavailable, errors
from rule_engine.api.schemas import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Page
from rule_engine.api.schemas_approvals import ApprovalAnswer, ApprovalPublic, ApprovalStatusName

router = APIRouter(tags=["approvals"])
#: An answer's decision → the option Airflow offers (rule_engine.operators.workflow_waits).
OPTIONS = {"approve": "Approve", "reject": "Reject"}
DECIDED = {"approve": "approved", "reject": "rejected"}
ApprovalId = Annotated[int, Path(ge=1, le=2**63 - 1, description="an approval's id")]


def _public(approval: Approval, request: Request) -> ApprovalPublic:
    base = str(request.base_url).rstrip("/")
    return ApprovalPublic(
        id=approval.id,
        workflow=approval.workflow,
        node_id=approval.node_id,
        dag_id=approval.dag_id,
        run_id=approval.run_id,
        subject=approval.subject,
        body=approval.body,
        items=list(approval.items),
        item_count=approval.item_count,
        assignees=list(approval.assignees),
        status=approval.status,
        on_timeout=approval.on_timeout,
        deadline=approval.deadline,
        created_at=approval.created_at,
        answered_by=approval.answered_by,
        answered_via=approval.answered_via,
        answered_at=approval.answered_at,
        comment=approval.comment,
        answer_url=str(request.url_for("answer_approval", approval_id=approval.id)),
        airflow_url=(
            f"{base}/dags/{approval.dag_id}/runs/{approval.run_id}/tasks/{approval.node_id}/required_actions"
        ),
    )


@router.get("/approvals", responses=errors())
def list_approvals(
    *,
    principal: Viewer,
    store: StoreDep,
    request: Request,
    status_: Annotated[
        ApprovalStatusName | Literal["all"], Query(alias="status", description="`all`: any status")
    ] = "waiting",
    everyone: Annotated[
        bool, Query(alias="all", description="organization admins: every assignee's, not only yours")
    ] = False,
    workflow: Annotated[str | None, Query(max_length=200, description="a workflow's name")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Page[ApprovalPublic]:
    """The approvals inbox: what waits for you (newest first) in your organization."""
    if everyone and not principal.has("admin"):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "every assignee's approvals: organization admins only")
    found = store.list_approvals(
        organizations=[principal.organization],
        assignee=None if everyone else principal.username,
        status=None if status_ == "all" else status_,
        workflow=workflow,
        limit=limit + 1,
        offset=offset,
    )
    return Page[ApprovalPublic](
        items=[_public(approval, request) for approval in found[:limit]],
        limit=limit,
        offset=offset,
        has_more=len(found) > limit,
    )


def _approval_in(store: StoreDep, organization: str, approval_id: int) -> Approval:
    approval = store.get_approval(approval_id)
    if approval is None or approval.organization != organization:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no approval {approval_id} in '{organization}'")
    return approval


@router.get("/approvals/{approval_id}", responses=errors())
def read_approval(
    approval_id: ApprovalId, principal: Viewer, store: StoreDep, request: Request
) -> ApprovalPublic:
    """One approval of your organization."""
    return _public(_approval_in(store, principal.organization, approval_id), request)


@router.post("/approvals/{approval_id}/answer", responses=errors(409), name="answer_approval")
def answer_approval(
    approval_id: ApprovalId, answer: ApprovalAnswer, principal: Viewer, store: StoreDep, request: Request
) -> ApprovalPublic:
    """Approve or reject, with a comment: for the approval's assignees. The waiting task resumes at once;
    the answer is recorded here, in the automation log and in the audit log."""
    approval = _approval_in(store, principal.organization, approval_id)
    if principal.username not in approval.assignees:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"only its assignees ({', '.join(approval.assignees)}) may answer approval {approval_id}; "
            "an organization role does not make you one",
        )
    if approval.status != "waiting":
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"approval {approval_id} is {approval.status}, not waiting"
        )
    try:
        airflow_approvals.answer_approval(
            approval.dag_id,
            approval.run_id,
            approval.node_id,
            username=principal.username,
            option=OPTIONS[answer.decision],
            comment=answer.comment,
        )
    except NotFoundError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, f"{exc}: the run is gone") from None
    except SQLAlchemyError:
        raise airflow_unavailable("Airflow's metadata database did not answer; try again later") from None
    store.settle_approval(
        approval.id,
        status=DECIDED[answer.decision],
        answered_by=principal.username,
        via="rest",
        comment=answer.comment or None,
    )
    store.record_audit(
        organization=principal.organization,
        actor=principal.username,
        action="update",
        kind="approval",
        name=approval.workflow,
        version=None,
        detail={
            "approval_id": approval.id,
            "run_id": approval.run_id,
            "node_id": approval.node_id,
            "decision": DECIDED[answer.decision],
            "comment": answer.comment,
        },
    )
    return _public(_approval_in(store, principal.organization, approval_id), request)
