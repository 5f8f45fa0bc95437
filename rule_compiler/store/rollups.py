"""What a run or an action result adds to the analytics rollups, and adding the difference (ADR 0012).

A run's share of the rollups is a function of its own row (:func:`run_share`); an action result's, of
its row and its run's identity (:func:`step_share`). Whoever changes such a row reads it before and
after, in the same transaction, and calls :func:`apply` with both shares: a retried task, a status
that changes twice or a cancel each leave the rollups equal to the sum of the shares of the rows as they
are now, which is what :func:`rebuild` computes from scratch. Purging raw rows (retention) leaves the
rollups alone, so the analytics keep the history the raw log no longer has.

Durations go into a histogram of fixed bins, each :data:`HISTOGRAM_BASE` times wider than the one
before: a percentile read from it lies within one bin (about 19 %) of the exact value.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from rule_compiler.sql_dialects import conflict_insert
from rule_compiler.store._db import UtcDateTime
from rule_compiler.store._json import loads
from rule_compiler.store.analytics_tables import (
    analytics_report_deliveries,
    analytics_reports,
    analytics_webhooks,
)
from rule_compiler.store.maintenance_tables import retention_marks
from rule_compiler.store.tables import (
    analytics_durations,
    analytics_errors,
    analytics_notifications,
    analytics_runs,
    analytics_steps,
    automation_action_results,
    automation_runs,
    notification_deliveries,
)

__all__ = [
    "ACTED_ON",
    "FINAL_STEP_STATUSES",
    "FINISHED_RUN_STATUSES",
    "HISTOGRAM_BASE",
    "RUN_STEP",
    "Share",
    "acted_of",
    "apply",
    "bin_bounds",
    "bin_value",
    "deliveries_share",
    "delivery_rows",
    "delivery_share",
    "duration_bin",
    "error_class",
    "hour_of",
    "locked",
    "rebuild",
    "rebuild_start",
    "run_share",
    "step_share",
    "webhook_attempt_share",
]

#: Each histogram bin is this many times wider than the one before (bin 0 holds what took under 1 ms).
HISTOGRAM_BASE = 2**0.25
_LOG_BASE = math.log(HISTOGRAM_BASE)
MAX_BIN = 200  # 2**(199/4) ms: far beyond any run
#: The ``step`` of a whole run's duration (action and node ids are never empty).
RUN_STEP = ""
FINISHED_RUN_STATUSES = ("no_match", "success", "failed", "partial")
#: An action result counts once it is final; ``running`` and ``retrying`` are on their way.
FINAL_STEP_STATUSES = ("success", "failed", "skipped")
#: The output counts of items an action's effect is in place for: done now, or by an earlier attempt
#: of the same run (the idempotency keys hold the run), or handed to a channel's queue.
ACTED_ON = (
    "applied",
    "already_applied",
    "delivered",
    "already_delivered",
    "sent",
    "already_sent",
    "deferred",
    "digest",
)
_TABLES = (analytics_runs, analytics_steps, analytics_durations, analytics_errors, analytics_notifications)
#: The order rows are added in (concurrent writers never deadlock). Webhook attempts are counted as they
#: end and never rebuilt, and reports have their own rebuild: neither is among the tables rebuild replaces.
_ORDER = {
    table.name: index
    for index, table in enumerate(
        (*_TABLES, analytics_webhooks, analytics_reports, analytics_report_deliveries)
    )
}
_ERROR_CLASS = re.compile(r"^([A-Za-z_][\w.]{0,199}):")


def duration_bin(milliseconds: float) -> int:
    """The histogram bin of a duration: 0 under 1 ms, then ``k`` for ``[base**(k-1), base**k)`` ms."""
    if milliseconds < 1:
        return 0
    return min(MAX_BIN, 1 + math.floor(math.log(milliseconds) / _LOG_BASE))


def bin_bounds(index: int) -> tuple[float, float]:
    """The durations (ms) of a bin: from (inclusive) and to (exclusive)."""
    if index <= 0:
        return 0.0, 1.0
    return HISTOGRAM_BASE ** (index - 1), HISTOGRAM_BASE**index


def bin_value(index: int) -> float:
    """What a bin stands for in a percentile: its geometric middle (ms)."""
    if index <= 0:
        return 0.5
    return float(HISTOGRAM_BASE ** (index - 0.5))


def hour_of(moment: dt.datetime) -> dt.datetime:
    """The rollup bucket of a moment: the UTC hour it falls in."""
    return moment.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


def error_class(error: str | None) -> str | None:
    """``TimeoutError`` of ``"TimeoutError: the host did not answer"``; ``"Error"`` when the text names
    no class; None for no error."""
    if not error:
        return None
    match = _ERROR_CLASS.match(error)
    return match.group(1) if match else "Error"


def acted_of(output: Any) -> int:
    """The items an action acted on, from its output's counts; a node that passes items on (no such
    counts) acted on the items it received."""
    if not isinstance(output, Mapping):
        return 0
    counts = [output[key] for key in ACTED_ON if isinstance(output.get(key), int)]
    if counts:
        return int(sum(counts))
    items = output.get("items")
    return items if isinstance(items, int) and not isinstance(items, bool) else 0


def _milliseconds(start: dt.datetime | None, end: dt.datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds() * 1000)


@dataclass
class Share:
    """Sums to add per rollup row: ``{(table, key): {column: amount}}``, and when each error was seen."""

    sums: dict[tuple[sa.Table, tuple[Any, ...]], dict[str, int]] = field(
        default_factory=lambda: defaultdict(dict)
    )
    seen: dict[tuple[Any, ...], tuple[dt.datetime, dt.datetime]] = field(default_factory=dict)

    def add(self, table: sa.Table, key: tuple[Any, ...], **amounts: int) -> None:
        row = self.sums[(table, key)]
        for column, amount in amounts.items():
            row[column] = row.get(column, 0) + amount

    def __iadd__(self, other: Share) -> Share:
        for (table, key), amounts in other.sums.items():
            self.add(table, key, **amounts)
        for key, (first, last) in other.seen.items():
            earlier, later = self.seen.get(key, (first, last))
            self.seen[key] = (min(first, earlier), max(last, later))
        return self


def _kind(dag_id: str) -> str:
    return dag_id.split("__", 1)[0]


def _keys(run: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """A run's rollup keys: (organization, kind, name, grain, bucket) for its hour and its day."""
    identity = (run["organization"], _kind(run["dag_id"]), run["rule_name"])
    hour = hour_of(run["started_at"])
    return [(*identity, "hour", hour), (*identity, "day", hour.replace(hour=0))]


def run_share(row: Mapping[str, Any] | None) -> Share:
    """A run row's share: nothing until it has finished."""
    share = Share()
    if row is None or row["status"] not in FINISHED_RUN_STATUSES:
        return share
    milliseconds = _milliseconds(row["started_at"], row["finished_at"])
    for key in _keys(row):
        share.add(
            analytics_runs,
            (*key, row["status"]),
            runs=1,
            evaluated=int(row["evaluated_count"] or 0),
            matched=int(row["matched_count"] or 0),
            acted=int(row["acted_count"] or 0),
            ignored=int(row.get("ignored_count") or 0),
        )
        if milliseconds is not None:
            share.add(analytics_durations, (*key, RUN_STEP, duration_bin(milliseconds)), count=1)
    return share


def step_share(run: Mapping[str, Any], result: Mapping[str, Any] | None) -> Share:
    """An action result's share (``run``: its run's organization, dag_id, rule_name, started_at):
    nothing until the result is final."""
    share = Share()
    if result is None or result["status"] not in FINAL_STEP_STATUSES:
        return share
    step = result["action_id"]
    output = loads(result["output_json"]) if result["output_json"] else None
    milliseconds = _milliseconds(result["started_at"], result["updated_at"])
    kind_of_error = error_class(result["error"]) if result["status"] == "failed" else None
    for key in _keys(run):
        share.add(
            analytics_steps,
            (*key, step, result["status"]),
            results=1,
            attempts=int(result["attempts"]),
            acted=acted_of(output) if result["status"] == "success" else 0,
        )
        if milliseconds is not None:
            share.add(analytics_durations, (*key, step, duration_bin(milliseconds)), count=1)
        if kind_of_error is not None:
            error_key = (*key, step, kind_of_error)
            share.add(analytics_errors, error_key, count=1)
            share.seen[error_key] = (result["updated_at"], result["updated_at"])
    return share


def delivery_share(row: Mapping[str, Any] | None) -> Share:
    """A notification delivery row's share: one delivery under its channel and current status, in the
    hour and day it was created; ``queued`` when it waited (quiet hours or a digest)."""
    share = Share()
    if row is None:
        return share
    hour = hour_of(row["created_at"])
    for grain, bucket in (("hour", hour), ("day", hour.replace(hour=0))):
        share.add(
            analytics_notifications,
            (row["organization"], grain, bucket, row["channel"], row["status"]),
            deliveries=1,
            attempts=int(row["attempts"]),
            queued=int(row["deliver_after"] is not None),
        )
    return share


def webhook_attempt_share(row: Mapping[str, Any] | None, outcome: str, ended: dt.datetime) -> Share:
    """One recorded webhook attempt (``row``: its delivery row before the record): under its definition,
    action and ``outcome``, in the bin of its latency (from its start, the row's ``updated_at`` while it
    is ``sending``, to ``ended``), in the hour and day it ended. Nothing when no attempt was in flight."""
    share = Share()
    if row is None or row["status"] != "sending":
        return share
    rule_id = str(row["rule_id"])
    organization = row.get("organization") or rule_id.partition("/")[0]
    definition = rule_id.partition("/")[2] or rule_id
    latency = duration_bin(_milliseconds(row["updated_at"], ended) or 0.0)
    hour = hour_of(ended)
    for grain, bucket in (("hour", hour), ("day", hour.replace(hour=0))):
        key = (organization, grain, bucket, definition, row["action_id"], outcome, latency)
        share.add(analytics_webhooks, key, attempts=1)
    return share


n = notification_deliveries
DELIVERY_FIELDS = (
    n.c.idempotency_key,
    n.c.organization,
    n.c.channel,
    n.c.status,
    n.c.attempts,
    n.c.deliver_after,
    n.c.created_at,
)


def delivery_rows(conn: sa.Connection, where: sa.ColumnElement[bool]) -> list[dict[str, Any]]:
    """The fields a delivery's share reads, of the rows ``where`` selects, locked until the transaction
    ends (on Postgres)."""
    query = sa.select(*DELIVERY_FIELDS).where(where).order_by(n.c.idempotency_key)
    return [dict(row._mapping) for row in conn.execute(locked(conn, query))]


def deliveries_share(rows: list[dict[str, Any]]) -> Share:
    """The summed shares of delivery rows."""
    share = Share()
    for row in rows:
        share += delivery_share(row)
    return share


def _columns(table: sa.Table) -> list[str]:
    return [column.name for column in table.primary_key.columns]


def apply(conn: sa.Connection, before: Share, after: Share) -> None:
    """Add ``after - before`` to the rollup rows, in a fixed order (concurrent writers never deadlock)."""
    deltas: dict[tuple[sa.Table, tuple[Any, ...]], dict[str, int]] = defaultdict(dict)
    for sign, share in ((-1, before), (1, after)):
        for target, amounts in share.sums.items():
            row = deltas[target]
            for column, amount in amounts.items():
                row[column] = row.get(column, 0) + sign * amount
    changed = sorted(
        ((table, key, amounts) for (table, key), amounts in deltas.items() if any(amounts.values())),
        key=lambda item: (_ORDER[item[0].name], item[1]),
    )
    for table, key, amounts in changed:
        _add(conn, table, key, amounts, after.seen.get(key) if table is analytics_errors else None)


def _add(
    conn: sa.Connection,
    table: sa.Table,
    key: tuple[Any, ...],
    amounts: Mapping[str, int],
    seen: tuple[dt.datetime, dt.datetime] | None,
) -> None:
    insert = conflict_insert(conn.dialect.name, table)
    if insert is None:  # pragma: no cover - the store refuses other dialects when it opens
        raise ValueError(f"no rollups on {conn.dialect.name}")
    values: dict[str, Any] = dict(zip(_columns(table), key, strict=True)) | dict(amounts)
    update: dict[str, Any] = {column: table.c[column] + amount for column, amount in amounts.items()}
    if table is analytics_errors:
        now = dt.datetime.now(dt.UTC)
        first, last = seen or (now, now)
        values |= {"first_seen": first, "last_seen": last}
        if seen is not None:  # a count taken back (a retry succeeded) leaves when it was seen
            earliest, latest = sa.literal(first, UtcDateTime()), sa.literal(last, UtcDateTime())
            update |= {
                "first_seen": sa.case((table.c.first_seen > earliest, earliest), else_=table.c.first_seen),
                "last_seen": sa.case((table.c.last_seen < latest, latest), else_=table.c.last_seen),
            }
    statement = insert.values(**values).on_conflict_do_update(
        index_elements=[table.c[name] for name in _columns(table)], set_=update
    )
    conn.execute(statement)


# -- reading the rows a share is computed from ------------------------------------------------------

r, a = automation_runs, automation_action_results
RUN_FIELDS = (
    r.c.id,
    r.c.organization,
    r.c.dag_id,
    r.c.rule_name,
    r.c.status,
    r.c.started_at,
    r.c.finished_at,
    r.c.evaluated_count,
    r.c.matched_count,
    r.c.acted_count,
    r.c.ignored_count,
)
STEP_FIELDS = (
    a.c.action_id,
    a.c.status,
    a.c.attempts,
    a.c.output_json,
    a.c.error,
    a.c.started_at,
    a.c.updated_at,
)


def locked(conn: sa.Connection, query: sa.Select[Any]) -> sa.Select[Any]:
    """``query ... FOR UPDATE`` on Postgres (a SQLite write transaction already holds the database)."""
    return query.with_for_update() if conn.dialect.name == "postgresql" else query


def run_row(conn: sa.Connection, run_pk: int) -> dict[str, Any] | None:
    """The run's fields a share reads, its row locked until the transaction ends (on Postgres)."""
    row = conn.execute(locked(conn, sa.select(*RUN_FIELDS).where(r.c.id == run_pk))).first()
    return None if row is None else dict(row._mapping)


def step_row(conn: sa.Connection, run_pk: int, action_id: str) -> dict[str, Any] | None:
    """An action result's fields a share reads, or None before its first record."""
    row = conn.execute(
        locked(conn, sa.select(*STEP_FIELDS).where(a.c.run_pk == run_pk, a.c.action_id == action_id))
    ).first()
    return None if row is None else dict(row._mapping)


# -- from scratch -------------------------------------------------------------------------------------


#: The retention targets whose purges end what a rebuild may recompute (``retention_marks.table_name``).
PURGED_SOURCES = ("runs", "notifications", "report_runs", "report_deliveries")


def rebuild_start(conn: sa.Connection, since: dt.datetime | None) -> dt.datetime | None:
    """Where a rebuild from ``since`` starts: the start of its day (UTC; None: everything), but never
    before the day after the latest retention cutoff of a source of the rollups."""
    start = None if since is None else hour_of(since).replace(hour=0)
    purged = conn.execute(
        sa.select(sa.func.max(retention_marks.c.cutoff)).where(
            retention_marks.c.table_name.in_(PURGED_SOURCES)
        )
    ).scalar_one_or_none()
    if purged is not None:
        floor = hour_of(purged).replace(hour=0) + dt.timedelta(days=1)
        start = floor if start is None else max(start, floor)
    return start


def rebuild(conn: sa.Connection, *, since: dt.datetime | None = None, chunk: int = 20_000) -> int:
    """Recompute the rollups from the start of ``since``'s day (UTC; everything when None) out of the
    raw log, and return the number of runs read. Earlier days are kept as they are (their raw rows may
    be purged), and so is every day up to the last retention purge of a source (:func:`rebuild_start`):
    their rollups hold what the purged rows no longer can."""
    start = rebuild_start(conn, since)
    for table in _TABLES:
        delete = table.delete()
        conn.execute(delete if start is None else delete.where(table.c.bucket >= start))
    _rebuild_deliveries(conn, start, chunk)
    total, after_id = 0, 0
    while True:
        query = sa.select(*RUN_FIELDS).where(r.c.id > after_id).order_by(r.c.id).limit(chunk)
        if start is not None:
            query = query.where(r.c.started_at >= start)
        runs = [dict(row._mapping) for row in conn.execute(query)]
        if not runs:
            return total
        share = Share()
        by_pk = {run["id"]: run for run in runs}
        for run in runs:
            share += run_share(run)
        results = conn.execute(sa.select(a.c.run_pk, *STEP_FIELDS).where(a.c.run_pk.in_(list(by_pk))))
        for result in results:
            share += step_share(by_pk[result.run_pk], dict(result._mapping))
        _add_all(conn, share)
        total += len(runs)
        after_id = runs[-1]["id"]


def _rebuild_deliveries(conn: sa.Connection, start: dt.datetime | None, chunk: int) -> None:
    after_id = 0
    while True:
        query = sa.select(n.c.id, *DELIVERY_FIELDS).where(n.c.id > after_id).order_by(n.c.id).limit(chunk)
        if start is not None:
            query = query.where(n.c.created_at >= start)
        rows = [dict(row._mapping) for row in conn.execute(query)]
        if not rows:
            return
        _add_all(conn, deliveries_share(rows))
        after_id = rows[-1]["id"]


def _add_all(conn: sa.Connection, share: Share) -> None:
    """Add a share to the rollup rows, one batched statement per table (its keys are distinct)."""
    rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    tables = {table.name: table for table in _TABLES}
    for (table, key), amounts in share.sums.items():
        row = dict(zip(_columns(table), key, strict=True)) | amounts
        if table is analytics_errors:
            row["first_seen"], row["last_seen"] = share.seen[key]
        rows[table.name].append(row)
    for name, values in rows.items():
        _upsert_rows(conn, tables[name], values)


def _upsert_rows(conn: sa.Connection, table: sa.Table, values: list[dict[str, Any]]) -> None:
    """One ``INSERT … ON CONFLICT DO UPDATE`` executed for many rows. ``RETURNING`` makes SQLAlchemy
    send them in batches of multi-row VALUES ("insertmanyvalues"); without it, an upsert's
    ``executemany`` runs row by row (30x slower on psycopg2)."""
    insert = conflict_insert(conn.dialect.name, table)
    if insert is None:  # pragma: no cover - the store refuses other dialects when it opens
        raise ValueError(f"no rollups on {conn.dialect.name}")
    counted = [c for c in values[0] if c not in _columns(table) and c not in ("first_seen", "last_seen")]
    update: dict[str, Any] = {column: table.c[column] + insert.excluded[column] for column in counted}
    if table is analytics_errors:
        first, last = insert.excluded.first_seen, insert.excluded.last_seen
        update |= {
            "first_seen": sa.case((table.c.first_seen > first, first), else_=table.c.first_seen),
            "last_seen": sa.case((table.c.last_seen < last, last), else_=table.c.last_seen),
        }
    statement = insert.on_conflict_do_update(
        index_elements=[table.c[column] for column in _columns(table)], set_=update
    ).returning(table.c.organization)
    conn.execute(statement, values).close()
