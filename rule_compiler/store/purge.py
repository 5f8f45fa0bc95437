"""Retention purges of the rule store: what goes, in chunks, archived first when asked.

Each purgeable table is a row of :data:`TARGETS`: the rows that go are *finished* (a run that still
runs, a delivery still being sent, waits or retries, is kept whatever its age) and their ``age``
column (when they last changed) is older than the target's cutoff. A purge deletes them in chunks
of ``chunk`` rows, each chunk one short transaction that locks only its own rows (``FOR UPDATE SKIP
LOCKED`` on Postgres): select the chunk, write it to the archive when asked, delete it (children
first), count it in ``retention_marks``. A purge that crashed is resumed: the next purge of the
target first finishes the crashed one's cutoff, so its archive files are the same, then goes on to
its own.

Purging never changes the analytics rollups: they keep the history the raw rows no longer hold, and
:func:`rule_compiler.store.rollups.rebuild` never recomputes a day whose rows were purged.
Audit rows go only through here (the append-only triggers let a DELETE through while the deleting
transaction holds a row of ``audit_purge_permits``), and every purge is itself audited: one audit
row per organization whose rows went.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from rule_compiler.store import archive
from rule_compiler.store.audit import insert_audit
from rule_compiler.store.maintenance_tables import audit_purge_permits, retention_marks
from rule_compiler.store.tables import (
    audit_log,
    automation_action_results,
    automation_run_items,
    automation_runs,
    notification_deliveries,
    notification_inbox,
    report_deliveries,
    report_runs,
    webhook_deliveries,
    workflow_approvals,
)

__all__ = ["TARGETS", "Child", "Preview", "PurgeResult", "PurgeTarget", "preview", "purge", "target_named"]

#: What a chunk holds by default: small enough that its locks are short, large enough to be quick.
DEFAULT_CHUNK = 1000
_FINISHED_RUN = ("no_match", "success", "failed", "partial")


@dataclass(frozen=True)
class Child:
    """Rows deleted (and archived, nested under ``label``) with their parent row."""

    table: sa.Table
    parent: str  # the column holding the parent's key
    label: str


@dataclass(frozen=True)
class PurgeTarget:
    """One purgeable table: its retention setting, key, age, what "finished" means and its children."""

    name: str
    setting: str  # the key in rule_compiler.retention_settings.DEFAULTS
    table: sa.Table
    key: str
    age: str  # when the row last changed: compared with the cutoff
    born: str  # when the row was made: a row born before the cutoff and not finished is reported kept
    finished: Callable[[sa.Table], sa.ColumnElement[bool]]
    children: tuple[Child, ...] = ()

    def due(self, cutoff: dt.datetime) -> sa.ColumnElement[bool]:
        """Finished rows whose age is older than ``cutoff``."""
        return sa.and_(self.table.c[self.age] < cutoff, self.finished(self.table))


def _any(_table: sa.Table) -> sa.ColumnElement[bool]:
    return sa.true()


def _status_in(*statuses: str) -> Callable[[sa.Table], sa.ColumnElement[bool]]:
    return lambda table: table.c.status.in_(statuses)


TARGETS: tuple[PurgeTarget, ...] = (
    PurgeTarget(
        "runs", "runs", automation_runs, "id", "finished_at", "started_at", _status_in(*_FINISHED_RUN),
        (
            Child(automation_action_results, "run_pk", "action_results"),
            Child(workflow_approvals, "run_pk", "approvals"),
            Child(automation_run_items, "run_pk", "items"),
        ),
    ),
    PurgeTarget(
        "notifications", "notifications", notification_deliveries, "id", "updated_at", "created_at",
        _status_in("sent", "failed", "muted", "digested"),
    ),
    PurgeTarget("inbox", "inbox", notification_inbox, "id", "created_at", "created_at", _any),
    PurgeTarget(
        "webhooks", "webhooks", webhook_deliveries, "idempotency_key", "updated_at", "updated_at",
        _status_in("delivered", "failed"),
    ),
    PurgeTarget(
        "report_runs", "reports", report_runs, "id", "finished_at", "started_at",
        lambda table: table.c.status != "running",
    ),
    PurgeTarget(
        "report_deliveries", "reports", report_deliveries, "id", "updated_at", "created_at",
        _status_in("sent", "failed"),
    ),
    PurgeTarget("audit", "audit", audit_log, "id", "created_at", "created_at", _any),
)  # fmt: skip


def target_named(name: str) -> PurgeTarget:
    """The target called ``name``; KeyError names the known ones."""
    for target in TARGETS:
        if target.name == name:
            return target
    raise KeyError(f"no retention target {name!r}; known: {', '.join(t.name for t in TARGETS)}")


@dataclass(frozen=True)
class Preview:
    """What a purge at ``cutoff`` would delete (the dry run)."""

    target: str
    cutoff: dt.datetime
    rows: int
    children: dict[str, int]
    oldest: dt.datetime | None
    kept_unfinished: int  # born before the cutoff but not finished: kept

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "cutoff": self.cutoff.isoformat(),
            "rows": self.rows,
            "children": self.children,
            "oldest": None if self.oldest is None else self.oldest.isoformat(),
            "kept_unfinished": self.kept_unfinished,
        }


def preview(conn: sa.Connection, target: PurgeTarget, cutoff: dt.datetime) -> Preview:
    """Count what a purge of ``target`` at ``cutoff`` would delete, and what it would keep."""
    table = target.table
    due = target.due(cutoff)
    rows, oldest = conn.execute(sa.select(sa.func.count(), sa.func.min(table.c[target.age])).where(due)).one()
    children = {
        child.label: conn.execute(
            sa.select(sa.func.count())
            .select_from(child.table.join(table, child.table.c[child.parent] == table.c[target.key]))
            .where(due)
        ).scalar_one()
        for child in target.children
    }
    kept = conn.execute(
        sa.select(sa.func.count()).where(table.c[target.born] < cutoff, sa.not_(target.finished(table)))
    ).scalar_one()
    return Preview(target.name, cutoff, rows, children, oldest, kept)


@dataclass
class PurgeResult:
    """What one purge of a target did: rows deleted and archived (per organization), chunks, files."""

    target: str
    cutoff: dt.datetime
    started: dt.datetime
    purged: int = 0
    archived: int = 0
    chunks: int = 0
    files: list[str] = field(default_factory=list)
    by_organization: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "cutoff": self.cutoff.isoformat(),
            "purged": self.purged,
            "archived": self.archived,
            "chunks": self.chunks,
            "files": len(self.files),
            "by_organization": dict(sorted(self.by_organization.items())),
        }


#: Opens one write transaction on the store (``Database.transaction(write=True)``).
Transaction = Callable[[], Any]


def purge(
    transaction: Transaction,
    target: PurgeTarget,
    cutoff: dt.datetime,
    *,
    now: dt.datetime,
    actor: str,
    sink: archive.ArchiveSink | None = None,
    chunk: int = DEFAULT_CHUNK,
) -> list[PurgeResult]:
    """Purge ``target``'s finished rows older than ``cutoff``, ``chunk`` rows per transaction.

    A crashed purge of the target is finished first (at its own cutoff); one result per cutoff
    purged. With a ``sink``, each chunk is archived before it is deleted.
    """
    if chunk < 1:
        raise ValueError("chunk must be at least 1")
    job = _Job(transaction, target, now, actor, sink, chunk)
    with transaction() as conn:
        unfinished = conn.execute(
            sa.select(retention_marks.c.cutoff).where(
                retention_marks.c.table_name == target.name, retention_marks.c.finished_at.is_(None)
            )
        ).scalar_one_or_none()
    results: list[PurgeResult] = []
    if unfinished is not None and unfinished < cutoff:
        results.append(job.run(unfinished, resume=True))
    results.append(job.run(cutoff, resume=unfinished == cutoff))
    return results


@dataclass(frozen=True)
class _Job:
    transaction: Transaction
    target: PurgeTarget
    now: dt.datetime
    actor: str
    sink: archive.ArchiveSink | None
    chunk: int

    def run(self, cutoff: dt.datetime, *, resume: bool) -> PurgeResult:
        result = PurgeResult(self.target.name, cutoff, self.now)
        if not resume:
            with self.transaction() as conn:
                _start_mark(conn, self.target.name, cutoff, self.now)
        while True:
            with self.transaction() as conn:
                if not _purge_chunk(conn, self, result):
                    _finish_mark(conn, self.target.name, self.now)
                    _audit(conn, self, result)
                    return result


def _purge_chunk(conn: sa.Connection, job: _Job, result: PurgeResult) -> bool:
    target, sink, chunk = job.target, job.sink, job.chunk
    table, key = target.table, target.table.c[target.key]
    query = sa.select(table).where(target.due(result.cutoff)).order_by(key).limit(chunk)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = [dict(row._mapping) for row in conn.execute(query)]
    if not rows:
        return False
    keys = [row[target.key] for row in rows]
    for child in target.children:
        parent = child.table.c[child.parent]
        by_parent: dict[Any, list[dict[str, Any]]] = {}
        for found in conn.execute(sa.select(child.table).where(parent.in_(keys)).order_by(child.table.c.id)):
            by_parent.setdefault(found._mapping[child.parent], []).append(dict(found._mapping))
        for row in rows:
            row[child.label] = by_parent.get(row[target.key], [])
    if sink is not None:
        for organization, own in _by_organization(rows):
            first, last = own[0][target.key], own[-1][target.key]
            name = archive.archive_name(organization, target.name, result.cutoff, first, last)
            result.files.append(sink.write(name, archive.encode_rows(own)))
        result.archived += len(rows)
    for child in target.children:
        conn.execute(child.table.delete().where(child.table.c[child.parent].in_(keys)))
    with _permit(conn, target, result.started):
        conn.execute(table.delete().where(key.in_(keys)))
    result.purged += len(rows)
    result.chunks += 1
    result.by_organization.update(_organization(row) for row in rows)
    conn.execute(
        retention_marks.update()
        .where(retention_marks.c.table_name == target.name)
        .values(
            purged=retention_marks.c.purged + len(rows),
            archived=retention_marks.c.archived + (len(rows) if sink is not None else 0),
        )
    )
    return True


def _by_organization(rows: list[dict[str, Any]]) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(_organization(row), []).append(row)
    yield from sorted(grouped.items())


def _organization(row: Mapping[str, Any]) -> str:
    """The row's organization; a webhook delivery from before organizations were recorded has its
    rule's (``acme/rule`` → ``acme``)."""
    return str(row.get("organization") or str(row.get("rule_id") or "").partition("/")[0] or "-")


@contextmanager
def _permit(conn: sa.Connection, target: PurgeTarget, now: dt.datetime) -> Iterator[None]:
    """Inside the block the transaction holds an audit purge permit when ``target`` is the audit log
    (removed before the transaction commits, so no other session ever sees it)."""
    if target.table is not audit_log:
        yield
        return
    conn.execute(audit_purge_permits.insert().values(holder="retention", created_at=now))
    yield
    conn.execute(audit_purge_permits.delete())


def _start_mark(conn: sa.Connection, name: str, cutoff: dt.datetime, now: dt.datetime) -> None:
    values = {"cutoff": cutoff, "purged": 0, "archived": 0, "started_at": now, "finished_at": None}
    updated = conn.execute(
        retention_marks.update().where(retention_marks.c.table_name == name).values(**values)
    ).rowcount
    if not updated:
        conn.execute(retention_marks.insert().values(table_name=name, **values))


def _finish_mark(conn: sa.Connection, name: str, now: dt.datetime) -> None:
    conn.execute(retention_marks.update().where(retention_marks.c.table_name == name).values(finished_at=now))


def _audit(conn: sa.Connection, job: _Job, result: PurgeResult) -> None:
    """One audit row per organization whose rows went (an audit purge is audited too)."""
    for organization, count in sorted(result.by_organization.items()):
        insert_audit(
            conn,
            organization=organization,
            actor=job.actor,
            action="delete",
            kind="retention",
            name=job.target.name,
            version=None,
            hash_before=None,
            hash_after=None,
            detail={"cutoff": result.cutoff.isoformat(), "purged": count, "archived": job.sink is not None},
            now=job.now,
        )
