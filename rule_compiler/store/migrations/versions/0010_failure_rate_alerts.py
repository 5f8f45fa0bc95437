"""Failure-rate alerts: which windows of which definitions were alerted.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 10:00:00

- ``failure_rate_alerts``: one row per (definition, window) whose failure rate crossed its threshold;
  the row is written before the owner is notified, so a window alerts once (ADR 0014).

History: it never imports the package's current schema.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_Count = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_Now = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "failure_rate_alerts",
        sa.Column("organization", sa.String(63), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("window_start", _Now, nullable=False),
        sa.Column("window_hours", sa.Integer(), nullable=False),
        sa.Column("runs", _Count, nullable=False),
        sa.Column("failed", _Count, nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("alerted_at", _Now, nullable=False),
        sa.PrimaryKeyConstraint(
            "organization", "kind", "name", "window_start", "window_hours", name="pk_failure_rate_alerts"
        ),
    )


def downgrade() -> None:
    op.drop_table("failure_rate_alerts")
