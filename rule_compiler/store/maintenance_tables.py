"""The rule store's housekeeping tables: how far each retention purge has gone, the permit that lets
the purge delete audit rows, and the failure-rate alerts sent (migrations 0009 and 0010).

Defined on :data:`rule_compiler.store.tables.metadata`; :mod:`rule_compiler.store.schema` gathers every
table.
"""

from __future__ import annotations

import sqlalchemy as sa

from rule_compiler.store._db import UtcDateTime
from rule_compiler.store.tables import BigCount, metadata

__all__ = ["audit_purge_permits", "failure_rate_alerts", "retention_marks"]

# -- retention (migration 0009) ----------------------------------------------------------------------

#: How far each table's purge has gone: a crashed purge resumes with the same cutoff, and rebuilding
#: the rollups never reaches back into days whose runs were purged.
retention_marks = sa.Table(
    "retention_marks",
    metadata,
    sa.Column("table_name", sa.String(64), primary_key=True),
    sa.Column("cutoff", UtcDateTime(), nullable=False),
    sa.Column("purged", BigCount, nullable=False),
    sa.Column("archived", BigCount, nullable=False),
    sa.Column("started_at", UtcDateTime(), nullable=False),
    sa.Column("finished_at", UtcDateTime(), nullable=True),
)

#: A row here, inserted and removed inside the retention purge's own transaction, is what lets the
#: append-only triggers of ``audit_log`` accept a DELETE (migration 0009).
audit_purge_permits = sa.Table(
    "audit_purge_permits",
    metadata,
    sa.Column("holder", sa.String(200), primary_key=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)

#: Failure-rate alerts sent: one row per definition and window, so a window alerts once (migration 0010).
failure_rate_alerts = sa.Table(
    "failure_rate_alerts",
    metadata,
    sa.Column("organization", sa.String(63), primary_key=True),
    sa.Column("kind", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(63), primary_key=True),
    sa.Column("window_start", UtcDateTime(), primary_key=True),
    sa.Column("window_hours", sa.Integer, primary_key=True),
    sa.Column("runs", BigCount, nullable=False),
    sa.Column("failed", BigCount, nullable=False),
    sa.Column("threshold", sa.Float, nullable=False),
    sa.Column("owner", sa.String(200), nullable=False),
    sa.Column("alerted_at", UtcDateTime(), nullable=False),
)
