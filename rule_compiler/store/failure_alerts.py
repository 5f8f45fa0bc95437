"""Failure-rate alerts in the rule store (ADR 0014): a definition's finished runs per hour and status,
read from the hourly analytics rollups (never the raw automation log), and the windows already alerted.

A window is claimed by inserting its row (``INSERT ... ON CONFLICT DO NOTHING``) before its owner is
notified: of two checkers racing for a window exactly one alerts, and a window alerts once.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

import sqlalchemy as sa

from rule_compiler.store._bookkeeping import transaction
from rule_compiler.store.maintenance_tables import failure_rate_alerts
from rule_compiler.store.runs import upsert
from rule_compiler.store.tables import analytics_runs

__all__ = ["alerted_windows", "claim_window", "hourly_statuses"]


def hourly_statuses(
    engine: sa.Engine, *, organization: str, kind: str, name: str, since: dt.datetime, until: dt.datetime
) -> dict[dt.datetime, dict[str, int]]:
    """Finished runs per hour (``since`` inclusive, ``until`` exclusive) and status: one grouped read of
    the hourly rollup rows."""
    t = analytics_runs
    query = (
        sa.select(t.c.bucket, t.c.status, sa.func.sum(t.c.runs))
        .where(
            t.c.organization == organization,
            t.c.kind == kind,
            t.c.name == name,
            t.c.grain == "hour",
            t.c.bucket >= since,
            t.c.bucket < until,
        )
        .group_by(t.c.bucket, t.c.status)
    )
    found: dict[dt.datetime, dict[str, int]] = defaultdict(dict)
    with transaction(engine) as conn:
        for bucket, status, runs in conn.execute(query):
            hour = bucket if bucket.tzinfo is not None else bucket.replace(tzinfo=dt.UTC)
            found[hour][status] = int(runs or 0)
    return dict(found)


def claim_window(engine: sa.Engine, **row: Any) -> bool:
    """Record that a window is alerted (``organization``, ``kind``, ``name``, ``window_start``,
    ``window_hours``, ``runs``, ``failed``, ``threshold``, ``owner``, ``alerted_at``); False when it
    was already."""
    with transaction(engine, write=True) as conn:
        inserted = conn.execute(
            upsert(conn, failure_rate_alerts).values(**row).on_conflict_do_nothing()
        ).rowcount
    return bool(inserted)


def alerted_windows(engine: sa.Engine, *, organization: str | None = None) -> list[dict[str, Any]]:
    """The windows alerted, oldest first."""
    t = failure_rate_alerts
    query = sa.select(t).order_by(t.c.window_start, t.c.organization, t.c.kind, t.c.name)
    if organization is not None:
        query = query.where(t.c.organization == organization)
    with transaction(engine) as conn:
        return [dict(row._mapping) for row in conn.execute(query)]
