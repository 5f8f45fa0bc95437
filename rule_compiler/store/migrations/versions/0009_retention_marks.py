"""Retention: how far each table's purge has gone, and the one way audit rows are deleted.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 01:10:00

- ``retention_marks``: per purged table, the cutoff of its last purge, the rows it deleted and archived,
  and whether it finished. A purge that crashed resumes from it with the same cutoff, and
  ``rule-compiler stats rebuild`` never recomputes the rollups of days whose runs were purged.
- ``audit_purge_permits``: the append-only triggers of ``audit_log`` now let a DELETE through while the
  deleting transaction holds a row here (the retention purge inserts one and removes it before it
  commits, so no other session ever sees it). UPDATE and TRUNCATE are still refused.
- an index on ``workflow_approvals.run_pk``: a purged run's approvals are found through it (and so are
  the rows its foreign key cascades to), not by scanning every approval.

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


APPEND_ONLY = "audit_log is append-only"
PG_FUNCTION = "rule_store_audit_log_append_only"


def _pg_function(body: str) -> str:
    return f"CREATE OR REPLACE FUNCTION {PG_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN {body} END $$"


#: USING MESSAGE, not a '%' format: offline SQL output would double the '%'.
_PG_REFUSE = f"RAISE EXCEPTION USING MESSAGE = '{APPEND_ONLY}: ' || TG_OP || ' is not allowed';"
_PG_PERMIT = "IF TG_OP = 'DELETE' AND EXISTS (SELECT 1 FROM audit_purge_permits) THEN RETURN OLD; END IF; "
_SQLITE_DELETE = (
    "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log{when} "
    f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}: DELETE is not allowed'); END"
)


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
    op.create_table(
        "audit_purge_permits",
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("created_at", _Now, nullable=False),
        sa.PrimaryKeyConstraint("holder", name="pk_audit_purge_permits"),
    )
    op.create_index("ix_workflow_approvals_run_pk", "workflow_approvals", ["run_pk"])
    dialect = op.get_context().dialect.name
    if dialect == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
        op.execute(_SQLITE_DELETE.format(when=" WHEN NOT EXISTS (SELECT 1 FROM audit_purge_permits)"))
    else:
        op.execute(_pg_function(_PG_PERMIT + _PG_REFUSE))


def downgrade() -> None:
    if op.get_context().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
        op.execute(_SQLITE_DELETE.format(when=""))
    else:
        op.execute(_pg_function(_PG_REFUSE))
    op.drop_table("audit_purge_permits")
    op.drop_index("ix_workflow_approvals_run_pk", "workflow_approvals")
    op.drop_table("retention_marks")
