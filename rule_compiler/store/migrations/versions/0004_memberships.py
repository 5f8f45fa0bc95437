"""Memberships for the REST view; indexes for its automation-log queries.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 18:00:00

- ``memberships``: which Airflow user belongs to which organization with which role
  (viewer < editor < admin). The REST view takes a request's organization from here, never from the
  request itself.
- ``automation_runs`` gains (organization, started_at) and (organization, status, started_at)
  indexes: the log listing filters by organization (and often status) and sorts by start time.

History: it never imports the package's current schema.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_Now = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "memberships",
        sa.Column("organization", sa.String(200), nullable=False),
        sa.Column("username", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", _Now, nullable=False),
        sa.Column("updated_at", _Now, nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("organization", "username", name="pk_memberships"),
        sa.CheckConstraint("role IN ('viewer', 'editor', 'admin')", name="ck_memberships_role"),
    )
    op.create_index("ix_memberships_username", "memberships", ["username"])
    op.create_index(
        "ix_automation_runs_organization_started_at", "automation_runs", ["organization", "started_at"]
    )
    op.create_index(
        "ix_automation_runs_organization_status_started_at",
        "automation_runs",
        ["organization", "status", "started_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_automation_runs_organization_status_started_at", "automation_runs")
    op.drop_index("ix_automation_runs_organization_started_at", "automation_runs")
    op.drop_index("ix_memberships_username", "memberships")
    op.drop_table("memberships")
