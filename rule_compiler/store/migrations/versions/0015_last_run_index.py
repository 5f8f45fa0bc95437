"""The last run of a DAG: an index on automation_runs (dag_id, started_at).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 10:00:00

The definitions board (``GET /definitions``) shows each rule's and workflow's latest run. With this
index that is a backward scan stopping at the first row, whatever the number of runs; without it,
Postgres combines the (organization, rule_name, started_at) and (dag_id, run_id) indexes and sorts
every run of the definition.

History: it never imports the package's current schema.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_automation_runs_dag_id_started_at", "automation_runs", ["dag_id", "started_at"])


def downgrade() -> None:
    op.drop_index("ix_automation_runs_dag_id_started_at", table_name="automation_runs")
