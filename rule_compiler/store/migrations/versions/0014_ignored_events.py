"""Trigger analytics: the events a run's `fields:` or operations filter dropped.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 02:40:00

- ``automation_runs.ignored_count``: the events a run was handed that its rule's `fields:` (or
  operations) filter dropped, from its trace.
- ``analytics_runs.ignored``: their sum, kept with the rest of a run's share (ADR 0012); rows from
  before this revision count 0, and ``rule-compiler stats rebuild`` recounts them from the runs.

History: it never imports the package's current schema.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("automation_runs", sa.Column("ignored_count", sa.Integer, nullable=True))
    op.add_column(
        "analytics_runs",
        sa.Column("ignored", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    # SQLite 3.35+ drops a column in place; a batch copy would drop automation_runs, cascading its results
    op.execute("ALTER TABLE analytics_runs DROP COLUMN ignored")
    op.execute("ALTER TABLE automation_runs DROP COLUMN ignored_count")
