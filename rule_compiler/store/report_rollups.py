"""Report analytics rollups (migration 0012, ADR 0012): each report run row's and report delivery
row's share, kept in the transaction that changes the row (:func:`counted`), and rebuilt from the rows.

A finished run (any status but ``running``) counts one run under its report, status and duration bin,
with the bytes of its rendered files, in the hour and day it started. A delivery counts one delivery
under its report, type and current status, with its attempts, in the hour and day it was created.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from rule_compiler.store._json import loads
from rule_compiler.store.analytics_tables import analytics_report_deliveries, analytics_reports
from rule_compiler.store.rollups import Share, apply, duration_bin, hour_of, locked
from rule_compiler.store.tables import report_deliveries, report_runs

__all__ = ["counted", "rebuild_reports", "report_delivery_share", "report_run_share"]


def _grains(moment: dt.datetime) -> list[tuple[str, dt.datetime]]:
    hour = hour_of(moment)
    return [("hour", hour), ("day", hour.replace(hour=0))]


def _bytes(files_json: str | None) -> int:
    files = loads(files_json)
    if not isinstance(files, Mapping):
        return 0
    sizes = (f.get("bytes") for f in files.values() if isinstance(f, Mapping))
    return sum(size for size in sizes if isinstance(size, int) and not isinstance(size, bool))


def report_run_share(row: Mapping[str, Any] | None) -> Share:
    """A report run row's share: nothing while it runs."""
    share = Share()
    if row is None or row["status"] == "running" or row["finished_at"] is None:
        return share
    milliseconds = max(0.0, (row["finished_at"] - row["started_at"]).total_seconds() * 1000)
    for grain, bucket in _grains(row["started_at"]):
        key = (
            row["organization"],
            grain,
            bucket,
            row["report_name"],
            row["status"],
            duration_bin(milliseconds),
        )
        share.add(analytics_reports, key, runs=1, bytes=_bytes(row["files_json"]))
    return share


def report_delivery_share(row: Mapping[str, Any] | None) -> Share:
    """A report delivery row's share: one delivery under its current status, with its attempts."""
    share = Share()
    if row is None:
        return share
    report = str(row["report_id"]).partition("/")[2] or str(row["report_id"])
    for grain, bucket in _grains(row["created_at"]):
        key = (row["organization"], grain, bucket, report, row["type"], row["status"])
        share.add(analytics_report_deliveries, key, deliveries=1, attempts=int(row["attempts"]))
    return share


_SHARES = {report_runs.name: report_run_share, report_deliveries.name: report_delivery_share}


@contextmanager
def counted(conn: sa.Connection, table: sa.Table, where: sa.ColumnElement[bool]) -> Iterator[None]:
    """Around a change of the report run or delivery rows ``where`` selects (locked on Postgres): add
    what it changes to the report rollups, in the same transaction."""
    share_of = _SHARES[table.name]

    def shares() -> Share:
        total = Share()
        for row in conn.execute(locked(conn, sa.select(table).where(where))):
            total += share_of(dict(row._mapping))
        return total

    before = shares()
    yield
    apply(conn, before, shares())


def rebuild_reports(conn: sa.Connection, *, start: dt.datetime | None, chunk: int = 20_000) -> int:
    """Recompute the report rollups from ``start`` (a day; everything when None) out of the rows; the
    report runs read."""
    for table in (analytics_reports, analytics_report_deliveries):
        delete = table.delete()
        conn.execute(delete if start is None else delete.where(table.c.bucket >= start))
    total = 0
    for table, born in (
        (report_runs, report_runs.c.started_at),
        (report_deliveries, report_deliveries.c.created_at),
    ):
        after_id, share_of = 0, _SHARES[table.name]
        while True:
            query = sa.select(table).where(table.c.id > after_id).order_by(table.c.id).limit(chunk)
            if start is not None:
                query = query.where(born >= start)
            rows = [dict(row._mapping) for row in conn.execute(query)]
            if not rows:
                break
            share = Share()
            for row in rows:
                share += share_of(row)
            apply(conn, Share(), share)
            total += len(rows) if table is report_runs else 0
            after_id = rows[-1]["id"]
    return total
