"""The rule store's methods for waiting workflows: approvals and cancels (:mod:`.approvals`).

Mixed into :class:`~rule_compiler.store.rule_store.RuleStore`; each method is one short transaction.
"""

from __future__ import annotations

import builtins
from collections.abc import Collection

from rule_compiler.clock import utcnow
from rule_compiler.store import approvals
from rule_compiler.store._db import Database
from rule_compiler.store.models import Approval, ApprovalRequest


class ApprovalMethods:
    """What waiting workflows record: the approvals they ask, and runs cancelled while they wait."""

    _db: Database

    def open_approval(self, request: ApprovalRequest) -> Approval:
        """Record a waiting approval; a retry of the node gets the stored row back, as it is."""
        with self._db.transaction(write=True) as conn:
            return approvals.open_approval(conn, request, utcnow())

    def get_approval(self, approval_id: int) -> Approval | None:
        with self._db.transaction(single_read=True) as conn:
            return approvals.get_approval(conn, approval_id)

    def find_approval(self, *, dag_id: str, run_id: str, node_id: str) -> Approval | None:
        with self._db.transaction(single_read=True) as conn:
            return approvals.find_approval(conn, dag_id=dag_id, run_id=run_id, node_id=node_id)

    def list_approvals(
        self,
        *,
        organizations: Collection[str],
        assignee: str | None = None,
        status: str | None = "waiting",
        workflow: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> builtins.list[Approval]:
        """Approvals of ``organizations`` (newest first); ``assignee`` keeps those asking that user."""
        with self._db.transaction(single_read=True) as conn:
            return approvals.list_approvals(
                conn,
                organizations=organizations,
                assignee=assignee,
                status=status,
                workflow=workflow,
                limit=limit,
                offset=offset,
            )

    def settle_approval(
        self, approval_id: int, *, status: str, answered_by: str | None, via: str, comment: str | None
    ) -> bool:
        """Record the answer of a waiting approval; False (nothing changed) when it was settled before."""
        with self._db.transaction(write=True) as conn:
            return approvals.settle_approval(
                conn,
                approval_id,
                status=status,
                answered_by=answered_by,
                via=via,
                comment=comment,
                now=utcnow(),
            )

    def cancel_run(self, *, dag_id: str, run_id: str, actor: str) -> bool:
        """Cancel a run that has not finished, with its waiting approvals; False when it cannot be."""
        with self._db.transaction(write=True) as conn:
            return approvals.cancel_run(conn, dag_id=dag_id, run_id=run_id, actor=actor, now=utcnow())

    def run_cancelled(self, run_pk: int) -> bool:
        """Whether the run was cancelled (then no effect may be applied)."""
        with self._db.transaction(single_read=True) as conn:
            return approvals.run_cancelled(conn, run_pk)
