"""Organization limits: each organization's Airflow pool size and its quotas.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 19:30:00

One row per organization a platform admin has set limits for (``rule-compiler limits``,
``PUT /organizations/{org}/limits``): ``pool_slots`` (its Airflow pool, NULL until provisioned),
``max_active_definitions`` and ``events_per_minute`` (NULL: no limit).

History: it never imports the package's current schema.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "organization_limits",
        sa.Column("organization", sa.String(200), primary_key=True),
        sa.Column("pool_slots", sa.Integer, nullable=True),
        sa.Column("max_active_definitions", sa.Integer, nullable=True),
        sa.Column("events_per_minute", sa.Integer, nullable=True),
        sa.Column("updated_by", sa.String(200), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("organization_limits")
