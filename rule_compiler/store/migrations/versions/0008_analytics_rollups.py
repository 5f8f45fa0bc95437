"""Analytics: hourly rollups of runs, action results, durations and errors.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 22:20:00

- ``automation_runs.evaluated_count`` / ``acted_count``: the items a run tested and the items its actions
  acted on, so what a run adds to the rollups is a function of its own row.
- ``automation_action_results.started_at``: when the recorded attempt started (its duration ends at
  ``updated_at``).
- ``analytics_runs``, ``analytics_steps``, ``analytics_durations``, ``analytics_errors``: sums per
  (organization, kind, name, hour) and per (..., day), kept in the transaction that changes a run or an
  action result. On Postgres, the indexes an organization's overview reads cover its columns
  (index-only scans).
- ``analytics_notifications``: notification deliveries per (organization, hour or day, channel,
  status), with their attempts and how many waited (quiet hours, digest).

Runs and deliveries recorded before this revision are added by ``rule-compiler stats rebuild`` (which
``rule-compiler db upgrade`` runs when it crosses this revision).

History: it never imports the package's current schema.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_Count = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_Now = sa.DateTime(timezone=True)


def _keys() -> list[sa.Column[str]]:
    return [
        sa.Column("organization", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("grain", sa.String(4), nullable=False),
        sa.Column("bucket", _Now, nullable=False),
    ]


def upgrade() -> None:
    op.add_column("automation_runs", sa.Column("evaluated_count", sa.Integer, nullable=True))
    op.add_column("automation_runs", sa.Column("acted_count", sa.Integer, nullable=True))
    op.add_column("automation_action_results", sa.Column("started_at", _Now, nullable=True))
    op.create_table(
        "analytics_runs",
        *_keys(),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("runs", _Count, nullable=False),
        sa.Column("evaluated", _Count, nullable=False),
        sa.Column("matched", _Count, nullable=False),
        sa.Column("acted", _Count, nullable=False),
        sa.PrimaryKeyConstraint("organization", "kind", "name", "grain", "bucket", "status", name="pk_analytics_runs"),
    )
    op.create_index(
        "ix_analytics_runs_organization_grain_bucket",
        "analytics_runs",
        ["organization", "grain", "bucket"],
        postgresql_include=["kind", "name", "status", "runs", "evaluated", "matched", "acted"],
    )
    op.create_table(
        "analytics_steps",
        *_keys(),
        sa.Column("step", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("results", _Count, nullable=False),
        sa.Column("attempts", _Count, nullable=False),
        sa.Column("acted", _Count, nullable=False),
        sa.PrimaryKeyConstraint(
            "organization", "kind", "name", "grain", "bucket", "step", "status", name="pk_analytics_steps"
        ),
    )
    op.create_table(
        "analytics_durations",
        *_keys(),
        sa.Column("step", sa.String(200), nullable=False),
        sa.Column("bin", sa.Integer, nullable=False),
        sa.Column("count", _Count, nullable=False),
        sa.PrimaryKeyConstraint(
            "organization", "kind", "name", "grain", "bucket", "step", "bin", name="pk_analytics_durations"
        ),
    )
    op.create_index(
        "ix_analytics_durations_organization_grain_step_bucket",
        "analytics_durations",
        ["organization", "grain", "step", "bucket"],
        postgresql_include=["kind", "name", "bin", "count"],
    )
    op.create_table(
        "analytics_errors",
        *_keys(),
        sa.Column("step", sa.String(200), nullable=False),
        sa.Column("error_class", sa.String(200), nullable=False),
        sa.Column("count", _Count, nullable=False),
        sa.Column("first_seen", _Now, nullable=False),
        sa.Column("last_seen", _Now, nullable=False),
        sa.PrimaryKeyConstraint(
            "organization", "kind", "name", "grain", "bucket", "step", "error_class", name="pk_analytics_errors"
        ),
    )
    op.create_index(
        "ix_analytics_errors_organization_grain_bucket", "analytics_errors", ["organization", "grain", "bucket"]
    )


    op.create_table(
        "analytics_notifications",
        sa.Column("organization", sa.String(200), nullable=False),
        sa.Column("grain", sa.String(4), nullable=False),
        sa.Column("bucket", _Now, nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("deliveries", _Count, nullable=False),
        sa.Column("attempts", _Count, nullable=False),
        sa.Column("queued", _Count, nullable=False),
        sa.PrimaryKeyConstraint(
            "organization", "grain", "bucket", "channel", "status", name="pk_analytics_notifications"
        ),
    )


def downgrade() -> None:
    op.drop_table("analytics_notifications")
    op.drop_index("ix_analytics_errors_organization_grain_bucket", "analytics_errors")
    op.drop_table("analytics_errors")
    op.drop_index("ix_analytics_durations_organization_grain_step_bucket", "analytics_durations")
    op.drop_table("analytics_durations")
    op.drop_table("analytics_steps")
    op.drop_index("ix_analytics_runs_organization_grain_bucket", "analytics_runs")
    op.drop_table("analytics_runs")
    # SQLite 3.35+ drops a column in place; a batch copy would drop automation_runs, cascading its results
    op.execute("ALTER TABLE automation_action_results DROP COLUMN started_at")
    for column in ("acted_count", "evaluated_count"):
        op.execute(f"ALTER TABLE automation_runs DROP COLUMN {column}")
