"""The definitions board: an organization's rules, workflows and reports with what a person watching
them asks first — is it on, when did it last run, and how did its recent runs go.

Two reads, so a listing filters over every definition and fetches run figures only for the page it
shows: :func:`board_entries` (the current version of each, small columns and the source, no compiled
spec) and :func:`board_stats` (the last run and a daily tally of the page's definitions, read from the
rollups and one index probe per definition: never a scan of the automation log).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from rule_compiler.store._json import loads
from rule_compiler.store.analytics import utc_of
from rule_compiler.store.analytics_tables import analytics_reports
from rule_compiler.store.tables import (
    analytics_runs,
    automation_runs,
    definition_versions,
    definitions,
    report_runs,
)

__all__ = [
    "BOARD_KINDS",
    "MAX_BOARD_DAYS",
    "BoardEntry",
    "BoardStats",
    "DayTally",
    "LastRun",
    "board_entries",
    "board_stats",
]

#: The kinds the board shows: those that run.
BOARD_KINDS = ("rule", "workflow", "report")
#: The longest daily history one board read covers.
MAX_BOARD_DAYS = 90
#: Run statuses per kind that count as succeeded and failed in a day's tally (the rest are neither:
#: no match, skipped, still running).
_SUCCEEDED = {"rule": ("success",), "workflow": ("success",), "report": ("success",)}
_FAILED = {"rule": ("failed", "partial"), "workflow": ("failed", "partial"), "report": ("error", "partial")}

d, v = definitions, definition_versions


@dataclass(frozen=True, slots=True)
class BoardEntry:
    """The current version of one definition, as the board lists it."""

    kind: str
    name: str
    dag_id: str
    active: bool
    version: int
    source: dict[str, Any]
    source_hash: str
    trigger_type: str | None
    updated_at: dt.datetime
    updated_by: str


@dataclass(frozen=True, slots=True)
class LastRun:
    """A definition's latest run (by start)."""

    run_id: str
    status: str
    started_at: dt.datetime
    finished_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class DayTally:
    """One UTC day of a definition's runs: all that finished, and those that succeeded or failed."""

    day: dt.date
    runs: int = 0
    succeeded: int = 0
    failed: int = 0


@dataclass
class BoardStats:
    """A definition's last run and its daily tallies, oldest first, one per day (zeros included)."""

    last_run: LastRun | None = None
    days: list[DayTally] = field(default_factory=list)


def board_entries(
    conn: sa.Connection, organization: str, kinds: Sequence[str] = BOARD_KINDS
) -> list[BoardEntry]:
    """Every not deleted definition of ``kinds`` in the organization, by name then kind."""
    rows = conn.execute(
        sa.select(
            d.c.kind,
            d.c.name,
            d.c.dag_id,
            d.c.active,
            d.c.current_version,
            v.c.source_json,
            v.c.source_hash,
            d.c.trigger_type,
            d.c.updated_at,
            v.c.actor,
        )
        .select_from(d.join(v, (v.c.definition_id == d.c.id) & (v.c.version == d.c.current_version)))
        .where(d.c.organization == organization, d.c.kind.in_(list(kinds)), d.c.deleted_at.is_(None))
    ).all()
    entries = [
        BoardEntry(
            kind=row.kind,
            name=row.name,
            dag_id=row.dag_id,
            active=bool(row.active),
            version=row.current_version,
            source=loads(row.source_json),
            source_hash=row.source_hash,
            trigger_type=row.trigger_type,
            updated_at=utc_of(row.updated_at),
            updated_by=row.actor,
        )
        for row in rows
    ]
    return sorted(entries, key=lambda entry: (entry.name, entry.kind))


def board_stats(
    conn: sa.Connection,
    organization: str,
    keys: Sequence[tuple[str, str]],
    *,
    days: int,
    now: dt.datetime,
) -> dict[tuple[str, str], BoardStats]:
    """(kind, name) → the last run and the last ``days`` UTC days (today included) of each of ``keys``."""
    if not 1 <= days <= MAX_BOARD_DAYS:
        raise ValueError(f"days must be 1 to {MAX_BOARD_DAYS}, not {days}")
    today = now.astimezone(dt.UTC).date()
    first = today - dt.timedelta(days=days - 1)
    since = dt.datetime.combine(first, dt.time(), tzinfo=dt.UTC)
    counts: dict[tuple[str, str], dict[dt.date, list[int]]] = defaultdict(
        lambda: defaultdict(lambda: [0, 0, 0])
    )
    runnable = [name for kind, name in keys if kind != "report"]
    reports = [name for kind, name in keys if kind == "report"]
    if runnable:
        t = analytics_runs
        rows = conn.execute(
            sa.select(t.c.kind, t.c.name, t.c.bucket, t.c.status, sa.func.sum(t.c.runs).label("n"))
            .where(
                t.c.organization == organization,
                t.c.grain == "day",
                t.c.bucket >= since,
                t.c.kind.in_(["rule", "workflow"]),
                t.c.name.in_(runnable),
            )
            .group_by(t.c.kind, t.c.name, t.c.bucket, t.c.status)
        )
        for row in rows:
            _count(counts[(row.kind, row.name)], row.kind, row.bucket, row.status, int(row.n))
    if reports:
        r = analytics_reports
        rows = conn.execute(
            sa.select(r.c.report, r.c.bucket, r.c.status, sa.func.sum(r.c.runs).label("n"))
            .where(
                r.c.organization == organization,
                r.c.grain == "day",
                r.c.bucket >= since,
                r.c.report.in_(reports),
            )
            .group_by(r.c.report, r.c.bucket, r.c.status)
        )
        for row in rows:
            _count(counts[("report", row.report)], "report", row.bucket, row.status, int(row.n))
    last = {
        **_last_runs(conn, organization, runnable, report=False),
        **_last_runs(conn, organization, reports, report=True),
    }
    out: dict[tuple[str, str], BoardStats] = {}
    for key in keys:
        per_day = counts.get(key, {})
        tallies = []
        for offset in range(days):
            day = first + dt.timedelta(days=offset)
            runs, succeeded, failed = per_day.get(day, (0, 0, 0))
            tallies.append(DayTally(day, runs, succeeded, failed))
        out[key] = BoardStats(last.get(key), tallies)
    return out


def _count(per_day: dict[dt.date, list[int]], kind: str, bucket: Any, status: str, n: int) -> None:
    tally = per_day[utc_of(bucket).date()]
    if status == "running":
        return
    tally[0] += n
    if status in _SUCCEEDED[kind]:
        tally[1] += n
    elif status in _FAILED[kind]:
        tally[2] += n


def _last_runs(
    conn: sa.Connection, organization: str, names: list[str], *, report: bool
) -> dict[tuple[str, str], LastRun]:
    """The latest run of each named definition: one index probe each, as a correlated subquery from the
    definitions, then one read of those runs."""
    if not names:
        return {}
    runs = report_runs if report else automation_runs
    # each probe follows an index to its last entry: (organization, report_name, started_at) for a
    # report (one kind per name), (dag_id, started_at) for rules and workflows (they may share a name)
    mine = (
        [runs.c.organization == d.c.organization, runs.c.report_name == d.c.name]
        if report
        else [runs.c.dag_id == d.c.dag_id]
    )
    latest = (
        sa.select(runs.c.id)
        .where(*mine)
        .order_by(runs.c.started_at.desc())
        .limit(1)
        .correlate(d)
        .scalar_subquery()
    )
    kinds = ["report"] if report else ["rule", "workflow"]
    picked = conn.execute(
        sa.select(d.c.kind, d.c.name, latest.label("run_pk")).where(
            d.c.organization == organization,
            d.c.kind.in_(kinds),
            d.c.name.in_(names),
            d.c.deleted_at.is_(None),
        )
    ).all()
    by_pk = {row.run_pk: (row.kind, row.name) for row in picked if row.run_pk is not None}
    if not by_pk:
        return {}
    rows = conn.execute(
        sa.select(runs.c.id, runs.c.run_id, runs.c.status, runs.c.started_at, runs.c.finished_at).where(
            runs.c.id.in_(list(by_pk))
        )
    )
    return {
        by_pk[row.id]: LastRun(
            row.run_id,
            row.status,
            utc_of(row.started_at),
            None if row.finished_at is None else utc_of(row.finished_at),
        )
        for row in rows
    }
