"""Retention: how far each table's purge has gone.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 01:10:00

- ``retention_marks``: per purged table, the cutoff of its last purge, the rows it deleted and archived,
  and whether it finished. A purge that crashed resumes from it with the same cutoff, and
  ``rule-compiler stats rebuild`` never recomputes the rollups of days whose runs were purged.

History: it never imports the package's current schema.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_Count = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_Now = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "retention_marks",
        sa.Column("table_name", sa.String(64), nullable=False),
        sa.Column("cutoff", _Now, nullable=False),
        sa.Column("purged", _Count, nullable=False),
        sa.Column("archived", _Count, nullable=False),
        sa.Column("started_at", _Now, nullable=False),
        sa.Column("finished_at", _Now, nullable=True),
        sa.PrimaryKeyConstraint("table_name", name="pk_retention_marks"),
    )


def downgrade() -> None:
    op.drop_table("retention_marks")
