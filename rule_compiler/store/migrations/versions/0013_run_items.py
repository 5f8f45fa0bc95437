"""Who triggered it: each run's matched items (table, key) and the user behind the change.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 02:30:00

- ``automation_run_items``: one row per matched item of a run, with the table and the canonical JSON
  of its key, and the actor: the application's user that made a captured change (the
  ``automation.actor`` setting its transaction set), the caller of a pushed event, or the user who
  triggered a manual run. Indexed by (table, key) and by actor: ``GET /logs?table=&key=&actor=``
  (ADR 0013). Runs recorded before this revision have none.

History: it never imports the package's current schema.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "automation_run_items",
        sa.Column("id", _Id, nullable=False),
        sa.Column("run_pk", _Id, nullable=False),
        sa.Column("table_name", sa.String(128), nullable=True),
        sa.Column("key_text", sa.String(500), nullable=True),
        sa.Column("actor", sa.String(200), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_automation_run_items"),
        sa.ForeignKeyConstraint(
            ["run_pk"], ["automation_runs.id"], name="fk_automation_run_items_run_pk_automation_runs", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_automation_run_items_run_pk", "automation_run_items", ["run_pk"])
    op.create_index("ix_automation_run_items_table_name_key_text", "automation_run_items", ["table_name", "key_text"])
    op.create_index("ix_automation_run_items_actor", "automation_run_items", ["actor"])


def downgrade() -> None:
    op.drop_table("automation_run_items")
