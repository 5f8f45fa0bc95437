"""The approvals of waiting workflows, and cancels of waiting runs (migration 0007; ADR 0011).

An approval node records its request when it starts to wait (:func:`open_approval`: a retry finds the
same row) and settles it when it resumes (:func:`settle_approval`: only a waiting row changes, so the
first answer wins, whichever route it came through). :func:`cancel_run` marks a run cancelled and
cancels its waiting approvals in one transaction; action and waiting nodes read
:func:`run_cancelled` before they apply anything.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Collection
from typing import Any

import sqlalchemy as sa

from rule_compiler.store._bookkeeping import check_page
from rule_compiler.store.models import Approval, ApprovalRequest
from rule_compiler.store.rollups import locked
from rule_compiler.store.runs import change_run, is_cancelled, upsert
from rule_compiler.store.tables import APPROVAL_STATUSES, APPROVAL_VIAS, automation_runs, workflow_approvals

t, r = workflow_approvals, automation_runs
MAX_COMMENT = 2_000
#: Final statuses of an automation run: a cancel comes too late for them.
FINISHED_RUN_STATUSES = ("no_match", "success", "failed", "partial")


def open_approval(conn: sa.Connection, request: ApprovalRequest, now: dt.datetime) -> Approval:
    """Record a waiting approval; the same (dag_id, run_id, node_id) again returns the stored row."""
    conn.execute(
        upsert(conn, t)
        .values(
            organization=request.organization,
            workflow=request.workflow,
            dag_id=request.dag_id,
            run_id=request.run_id,
            node_id=request.node_id,
            run_pk=request.run_pk,
            assignees_json=json.dumps(list(request.assignees)),
            subject=request.subject,
            body=request.body,
            items_json=json.dumps(list(request.items)[:50]),
            item_count=request.item_count,
            status="waiting",
            on_timeout=request.on_timeout,
            deadline=request.deadline,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=[t.c.dag_id, t.c.run_id, t.c.node_id])
    )
    found = find_approval(conn, dag_id=request.dag_id, run_id=request.run_id, node_id=request.node_id)
    assert found is not None  # noqa: S101 - inserted or found just above, in this transaction
    return found


def get_approval(conn: sa.Connection, approval_id: int) -> Approval | None:
    row = conn.execute(sa.select(t).where(t.c.id == approval_id)).first()
    return None if row is None else _approval(row)


def find_approval(conn: sa.Connection, *, dag_id: str, run_id: str, node_id: str) -> Approval | None:
    query = sa.select(t).where(t.c.dag_id == dag_id, t.c.run_id == run_id, t.c.node_id == node_id)
    row = conn.execute(query).first()
    return None if row is None else _approval(row)


def list_approvals(
    conn: sa.Connection,
    *,
    organizations: Collection[str],
    assignee: str | None = None,
    status: str | None = "waiting",
    workflow: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Approval]:
    """Approvals of ``organizations``, newest first; ``assignee``: only those asking that user."""
    check_page(limit, offset)
    if status is not None and status not in APPROVAL_STATUSES:
        raise ValueError(
            f"unknown approval status {status!r}; expected one of {', '.join(APPROVAL_STATUSES)}"
        )
    query = sa.select(t).where(t.c.organization.in_(list(organizations)))
    if status is not None:
        query = query.where(t.c.status == status)
    if workflow is not None:
        query = query.where(t.c.workflow == workflow)
    if assignee is not None:  # a JSON list of user names: the quoted name matches exactly one entry
        query = query.where(t.c.assignees_json.contains(json.dumps(assignee), autoescape=True))
    query = query.order_by(t.c.created_at.desc(), t.c.id.desc()).limit(limit).offset(offset)
    return [_approval(row) for row in conn.execute(query)]


def settle_approval(
    conn: sa.Connection,
    approval_id: int,
    *,
    status: str,
    answered_by: str | None,
    via: str,
    comment: str | None,
    now: dt.datetime,
) -> bool:
    """Record the answer of a waiting approval (True); anything else is left as it is (False)."""
    if status not in APPROVAL_STATUSES or status == "waiting":
        raise ValueError(f"an approval settles as approved, rejected, timed_out or cancelled, not {status!r}")
    if via not in APPROVAL_VIAS:
        raise ValueError(f"unknown answer route {via!r}; expected one of {', '.join(APPROVAL_VIAS)}")
    changed = conn.execute(
        t.update()
        .where(t.c.id == approval_id, t.c.status == "waiting")
        .values(
            status=status,
            answered_by=answered_by,
            answered_via=via,
            comment=(comment or None) and comment[:MAX_COMMENT],
            answered_at=now,
        )
    ).rowcount
    return bool(changed)


def cancel_run(conn: sa.Connection, *, dag_id: str, run_id: str, actor: str, now: dt.datetime) -> bool:
    """Mark a running run cancelled (its status ``failed``) and cancel its waiting approvals; False when
    the run is unknown, finished or already cancelled."""
    unfinished = sa.select(r.c.id).where(
        r.c.dag_id == dag_id,
        r.c.run_id == run_id,
        r.c.cancelled_at.is_(None),
        r.c.status.not_in(FINISHED_RUN_STATUSES),
    )
    run_pk = conn.execute(locked(conn, unfinished)).scalar_one_or_none()
    if run_pk is None:
        return False
    change_run(conn, run_pk, status="failed", finished_at=now, cancelled_at=now, cancelled_by=actor)
    conn.execute(
        t.update()
        .where(t.c.dag_id == dag_id, t.c.run_id == run_id, t.c.status == "waiting")
        .values(status="cancelled", answered_by=actor, answered_via="cancel", answered_at=now)
    )
    return True


def run_cancelled(conn: sa.Connection, run_pk: int) -> bool:
    """Whether the run was cancelled over REST."""
    return is_cancelled(conn, run_pk)


def _approval(row: Any) -> Approval:
    return Approval(
        id=int(row.id),
        organization=row.organization,
        workflow=row.workflow,
        dag_id=row.dag_id,
        run_id=row.run_id,
        node_id=row.node_id,
        run_pk=None if row.run_pk is None else int(row.run_pk),
        assignees=tuple(json.loads(row.assignees_json)),
        subject=row.subject,
        body=row.body,
        items=tuple(json.loads(row.items_json)),
        item_count=int(row.item_count),
        status=row.status,
        on_timeout=row.on_timeout,
        deadline=row.deadline,
        answered_by=row.answered_by,
        answered_via=row.answered_via,
        comment=row.comment,
        created_at=row.created_at,
        answered_at=row.answered_at,
    )
