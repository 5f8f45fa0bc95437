"""Waiting workflows: approvals, and cancels of runs.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 19:30:00

- ``workflow_approvals``: one row per approval node of a run (keyed by dag_id, run_id, node_id): the
  organization and workflow, the assignees, the subject and body as rendered from the item (shown to
  the organization's members over the REST view only), the item keys and count, the status (waiting,
  approved, rejected, timed_out, cancelled), who answered, through what (rest, airflow, timeout,
  cancel), the comment, the deadline.
- ``automation_runs.cancelled_at`` / ``cancelled_by``: a run cancelled over REST while it waited; its
  status is ``failed``, and no effect is applied after the cancel.

History: it never imports the package's current schema.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_Now = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("automation_runs", sa.Column("cancelled_at", _Now, nullable=True))
    op.add_column("automation_runs", sa.Column("cancelled_by", sa.String(200), nullable=True))
    op.create_table(
        "workflow_approvals",
        sa.Column("id", _Id, primary_key=True),
        sa.Column("organization", sa.String(200), nullable=False),
        sa.Column("workflow", sa.String(200), nullable=False),
        sa.Column("dag_id", sa.String(250), nullable=False),
        sa.Column("run_id", sa.String(250), nullable=False),
        sa.Column("node_id", sa.String(200), nullable=False),
        sa.Column("run_pk", _Id, nullable=True),
        sa.Column("assignees_json", sa.Text, nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=True),
        sa.Column("items_json", sa.Text, nullable=False),
        sa.Column("item_count", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("on_timeout", sa.String(16), nullable=False),
        sa.Column("deadline", _Now, nullable=True),
        sa.Column("answered_by", sa.String(200), nullable=True),
        sa.Column("answered_via", sa.String(16), nullable=True),
        sa.Column("comment", sa.Text, nullable=True),
        sa.Column("created_at", _Now, nullable=False),
        sa.Column("answered_at", _Now, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_workflow_approvals"),
        sa.ForeignKeyConstraint(
            ["run_pk"],
            ["automation_runs.id"],
            name="fk_workflow_approvals_run_pk_automation_runs",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint(
            "dag_id", "run_id", "node_id", name="uq_workflow_approvals_dag_id_run_id_node_id"
        ),
        sa.CheckConstraint(
            "status IN ('waiting', 'approved', 'rejected', 'timed_out', 'cancelled')",
            name="ck_workflow_approvals_status",
        ),
    )
    op.create_index(
        "ix_workflow_approvals_organization_status", "workflow_approvals", ["organization", "status"]
    )


def downgrade() -> None:
    op.drop_index("ix_workflow_approvals_organization_status", "workflow_approvals")
    op.drop_table("workflow_approvals")
    # SQLite 3.35+ drops a column in place; a batch copy would drop automation_runs, cascading its results
    for column in ("cancelled_by", "cancelled_at"):
        op.execute(f"ALTER TABLE automation_runs DROP COLUMN {column}")
