"""The webhook delivery ledger: one row per idempotency key (rule, run, action, row).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 00:00:00

History: it never imports the package's current schema.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rule_engine_webhook_deliveries",
        sa.Column("idempotency_key", sa.String(64), primary_key=True),
        sa.Column("rule_id", sa.String(200), nullable=False),
        sa.Column("action_id", sa.String(100), nullable=False),
        sa.Column("occurrence_id", sa.String(250), nullable=False),
        sa.Column("row_key", sa.Text, nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("response_status", sa.Integer, nullable=True),
        sa.Column("response_body", sa.Text, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("rule_engine_webhook_deliveries")
