"""Report analytics: report runs and report deliveries, by the hour and the day.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 02:20:00

- ``analytics_reports``: finished report runs per report, status and duration bin, with the bytes of
  their rendered files, by the hour or day they started.
- ``analytics_report_deliveries``: report deliveries per report, type and current status, with their
  attempts, by the hour or day they were created.

Both are kept in the transaction that changes a report run or delivery row; the runs and deliveries
recorded before this revision are added by ``rule-compiler stats rebuild`` (which
``rule-compiler db upgrade`` runs when it crosses this revision).

History: it never imports the package's current schema.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_Count = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _keys() -> list[sa.Column[str]]:
    return [
        sa.Column("organization", sa.String(200), nullable=False),
        sa.Column("grain", sa.String(4), nullable=False),
        sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
        sa.Column("report", sa.String(200), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "analytics_reports",
        *_keys(),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("bin", sa.Integer, nullable=False),
        sa.Column("runs", _Count, nullable=False),
        sa.Column("bytes", _Count, nullable=False),
        sa.PrimaryKeyConstraint(
            "organization", "grain", "bucket", "report", "status", "bin", name="pk_analytics_reports"
        ),
    )
    op.create_table(
        "analytics_report_deliveries",
        *_keys(),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("deliveries", _Count, nullable=False),
        sa.Column("attempts", _Count, nullable=False),
        sa.PrimaryKeyConstraint(
            "organization", "grain", "bucket", "report", "type", "status", name="pk_analytics_report_deliveries"
        ),
    )


def downgrade() -> None:
    op.drop_table("analytics_report_deliveries")
    op.drop_table("analytics_reports")
