"""Webhook analytics: attempts per definition, action, outcome and latency, by the hour and the day.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 02:10:00

- ``analytics_webhooks``: one more attempt is added in the transaction that records how the attempt
  ended (``delivered``, ``retrying`` or ``failed``), under the latency bin of the attempt (from its
  start to its record). Attempts made before this revision are not counted: a delivery row keeps only
  its latest attempt.

History: it never imports the package's current schema.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "analytics_webhooks",
        sa.Column("organization", sa.String(200), nullable=False),
        sa.Column("grain", sa.String(4), nullable=False),
        sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
        sa.Column("definition", sa.String(200), nullable=False),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("bin", sa.Integer, nullable=False),
        sa.Column("attempts", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.PrimaryKeyConstraint(
            "organization", "grain", "bucket", "definition", "action", "outcome", "bin", name="pk_analytics_webhooks"
        ),
    )


def downgrade() -> None:
    op.drop_table("analytics_webhooks")
