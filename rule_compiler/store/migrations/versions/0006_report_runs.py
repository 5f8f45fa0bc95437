"""The report execution log: runs, deliveries and alert state of ``kind: report``.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 12:00:00

- ``report_runs``: one row per report DAG run (keyed by dag_id and run_id): its data interval,
  parameters, status (running, success, partial, skipped-empty, not-triggered, error), rows per
  query, files with their sizes, step durations, the alert check's verdict and digest, the error.
- ``report_deliveries``: one row per (report, data interval end, delivery index), keyed by its
  idempotency key: written before and after each attempt, so a second run of the same interval does
  not deliver again.
- ``report_alerts``: per alert-mode report, when it was last sent (the run's interval end) and what
  it said, for the grace period.

History: it never imports the package's current schema.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_Now = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "report_runs",
        sa.Column("id", _Id, primary_key=True),
        sa.Column("organization", sa.String(200), nullable=False),
        sa.Column("report_name", sa.String(200), nullable=False),
        sa.Column("dag_id", sa.String(250), nullable=False),
        sa.Column("run_id", sa.String(250), nullable=False),
        sa.Column("spec_hash", sa.String(128), nullable=False),
        sa.Column("interval_start", _Now, nullable=False),
        sa.Column("interval_end", _Now, nullable=False),
        sa.Column("logical_date", _Now, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("parameters_json", sa.Text, nullable=False),
        sa.Column("queries_json", sa.Text, nullable=True),
        sa.Column("files_json", sa.Text, nullable=True),
        sa.Column("steps_json", sa.Text, nullable=True),
        sa.Column("alert_json", sa.Text, nullable=True),
        sa.Column("alert_digest", sa.String(128), nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("started_at", _Now, nullable=False),
        sa.Column("finished_at", _Now, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_report_runs"),
        sa.UniqueConstraint("dag_id", "run_id", name="uq_report_runs_dag_id_run_id"),
        sa.CheckConstraint(
            "status IN ('running', 'success', 'partial', 'skipped-empty', 'not-triggered', 'error')",
            name="ck_report_runs_status",
        ),
    )
    op.create_index(
        "ix_report_runs_organization_report_name_started_at",
        "report_runs",
        ["organization", "report_name", "started_at"],
    )
    op.create_index(
        "ix_report_runs_organization_report_name_interval_end",
        "report_runs",
        ["organization", "report_name", "interval_end"],
    )
    op.create_table(
        "report_deliveries",
        sa.Column("id", _Id, primary_key=True),
        sa.Column("idempotency_key", sa.String(64), nullable=False),
        sa.Column("organization", sa.String(200), nullable=False),
        sa.Column("report_id", sa.String(200), nullable=False),
        sa.Column("interval_end", _Now, nullable=False),
        sa.Column("delivery_index", sa.Integer, nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("target", sa.String(500), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("run_id", sa.String(250), nullable=False),
        sa.Column("detail_json", sa.Text, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("created_at", _Now, nullable=False),
        sa.Column("updated_at", _Now, nullable=False),
        sa.Column("sent_at", _Now, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_report_deliveries"),
        sa.UniqueConstraint("idempotency_key", name="uq_report_deliveries_idempotency_key"),
        sa.CheckConstraint(
            "status IN ('sending', 'sent', 'retrying', 'failed')", name="ck_report_deliveries_status"
        ),
        sa.CheckConstraint(
            "type IN ('email', 'slack', 'webhook', 'in_app', 'storage')", name="ck_report_deliveries_type"
        ),
    )
    op.create_index(
        "ix_report_deliveries_report_id_interval_end",
        "report_deliveries",
        ["report_id", "interval_end"],
    )
    op.create_table(
        "report_alerts",
        sa.Column("report_id", sa.String(200), nullable=False),
        sa.Column("organization", sa.String(200), nullable=False),
        sa.Column("last_sent_interval_end", _Now, nullable=False),
        sa.Column("last_digest", sa.String(128), nullable=True),
        sa.Column("last_run_id", sa.String(250), nullable=False),
        sa.Column("updated_at", _Now, nullable=False),
        sa.PrimaryKeyConstraint("report_id", name="pk_report_alerts"),
    )


def downgrade() -> None:
    op.drop_table("report_alerts")
    op.drop_index("ix_report_deliveries_report_id_interval_end", "report_deliveries")
    op.drop_table("report_deliveries")
    op.drop_index("ix_report_runs_organization_report_name_interval_end", "report_runs")
    op.drop_index("ix_report_runs_organization_report_name_started_at", "report_runs")
    op.drop_table("report_runs")
