"""The rule store's newer analytics rollups: webhook attempts (migration 0011), report runs and report
deliveries (migration 0012). The older ones are in :mod:`rule_compiler.store.tables`.

Defined on :data:`rule_compiler.store.tables.metadata`; :mod:`rule_compiler.store.schema` gathers every
table.
"""

from __future__ import annotations

import sqlalchemy as sa

from rule_compiler.store._db import UtcDateTime
from rule_compiler.store.tables import BigCount, Name, metadata

__all__ = ["analytics_report_deliveries", "analytics_reports", "analytics_webhooks"]

#: Webhook attempts per definition, action, outcome (delivered, retrying, failed) and latency bin, by
#: the hour or day they ended (migration 0011). Counted once, in the transaction that records the
#: attempt: the delivery row keeps only its latest attempt, so these are not rebuilt from it.
analytics_webhooks = sa.Table(
    "analytics_webhooks",
    metadata,
    sa.Column("organization", Name, primary_key=True),
    sa.Column("grain", sa.String(4), primary_key=True),
    sa.Column("bucket", UtcDateTime(), primary_key=True),
    sa.Column("definition", Name, primary_key=True),  # the rule's or workflow's name
    sa.Column("action", sa.String(100), primary_key=True),
    sa.Column("outcome", sa.String(20), primary_key=True),
    sa.Column("bin", sa.Integer(), primary_key=True),  # rollups.duration_bin of the attempt's latency
    sa.Column("attempts", BigCount, nullable=False),
)


#: Finished report runs per report, status and duration bin, with the bytes of their files, by the hour
#: or day they started (migration 0012): each run row's share, kept as the row changes.
analytics_reports = sa.Table(
    "analytics_reports",
    metadata,
    sa.Column("organization", Name, primary_key=True),
    sa.Column("grain", sa.String(4), primary_key=True),
    sa.Column("bucket", UtcDateTime(), primary_key=True),
    sa.Column("report", Name, primary_key=True),
    sa.Column("status", sa.String(16), primary_key=True),
    sa.Column("bin", sa.Integer(), primary_key=True),  # rollups.duration_bin of the run
    sa.Column("runs", BigCount, nullable=False),
    sa.Column("bytes", BigCount, nullable=False),  # the rendered files' sizes
)

#: Report deliveries per report, type and current status, with their attempts, by the hour or day
#: they were created (migration 0012): each delivery row's share, kept as the row changes.
analytics_report_deliveries = sa.Table(
    "analytics_report_deliveries",
    metadata,
    sa.Column("organization", Name, primary_key=True),
    sa.Column("grain", sa.String(4), primary_key=True),
    sa.Column("bucket", UtcDateTime(), primary_key=True),
    sa.Column("report", Name, primary_key=True),
    sa.Column("type", sa.String(16), primary_key=True),
    sa.Column("status", sa.String(16), primary_key=True),
    sa.Column("deliveries", BigCount, nullable=False),
    sa.Column("attempts", BigCount, nullable=False),
)
