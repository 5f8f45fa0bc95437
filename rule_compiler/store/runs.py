"""The automation log: one row per run, one per action of the run.

Task code on Airflow workers calls these, each in its own short transaction. Airflow delivers at
least once, so every write is retry-safe: a run is keyed on (dag_id, run_id) and an action result
on (run, action_id), both written with ``INSERT ... ON CONFLICT`` so that concurrent retries never
race into a duplicate.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from rule_compiler.errors import NotFoundError, StoreError
from rule_compiler.sql_dialects import conflict_insert
from rule_compiler.store import rollups
from rule_compiler.store._json import loads, log_json
from rule_compiler.store.models import ActionResult, RunLog
from rule_compiler.store.tables import (
    ACTION_STATUSES,
    RUN_STATUSES,
    automation_action_results,
    automation_run_items,
    automation_runs,
)

r, a = automation_runs, automation_action_results


def _check(status: str, allowed: tuple[str, ...], what: str) -> None:
    if status not in allowed:
        raise ValueError(f"unknown {what} status {status!r}; expected one of {', '.join(allowed)}")


def upsert(conn: sa.Connection, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
    """An insert into a store table that takes ``on_conflict_do_*``."""
    insert = conflict_insert(conn.dialect.name, table)
    if insert is None:
        raise StoreError(f"the rule store supports SQLite and Postgres, not {conn.dialect.name}")
    return insert


def start_run(
    conn: sa.Connection,
    *,
    organization: str,
    rule_name: str,
    dag_id: str,
    run_id: str,
    spec_hash: str,
    trigger_type: str,
    trigger_context: dict[str, Any],
    now: dt.datetime,
) -> int:
    """The run's primary key; the first call inserts it, retries find the same row."""
    conn.execute(
        upsert(conn, r)
        .values(
            organization=organization,
            rule_name=rule_name,
            dag_id=dag_id,
            run_id=run_id,
            spec_hash=spec_hash,
            trigger_type=trigger_type,
            trigger_context_json=log_json(trigger_context),
            status="running",
            matched_count=0,
            started_at=now,
        )
        .on_conflict_do_nothing(index_elements=[r.c.dag_id, r.c.run_id])
    )
    return int(conn.execute(sa.select(r.c.id).where(r.c.dag_id == dag_id, r.c.run_id == run_id)).scalar_one())


def is_cancelled(conn: sa.Connection, run_pk: int) -> bool:
    """Whether the run was cancelled over REST (ADR 0011)."""
    return conn.execute(sa.select(r.c.cancelled_at).where(r.c.id == run_pk)).scalar_one_or_none() is not None


def change_run(conn: sa.Connection, run_pk: int, **values: Any) -> None:
    """Update a run's row and add what the change makes of its share to the analytics rollups."""
    before = rollups.run_row(conn, run_pk)
    if before is None:
        raise NotFoundError(f"no automation run with id {run_pk}")
    conn.execute(r.update().where(r.c.id == run_pk).values(**values))
    rollups.apply(conn, rollups.run_share(before), rollups.run_share(before | values))


#: The items one run records for the log's filters (``max_matches`` bounds a run's matches anyway).
MAX_RUN_ITEMS = 10_000


@dataclass(frozen=True, slots=True)
class RunItem:
    """A matched item of a run: its table and key, and who made the change behind it (ADR 0013)."""

    table: str | None
    key: Any
    actor: str | None = None


def key_text(key: Any) -> str:
    """The canonical JSON of an item's key as the log's filter compares it (``[42]``, ``{"id": 42}``)."""
    return log_json(key)[:500]


def record_evaluation(
    conn: sa.Connection,
    run_pk: int,
    *,
    trace: Any,
    matched_count: int,
    status: str,
    now: dt.datetime,
    items: Sequence[RunItem] = (),
) -> None:
    """Store the condition trace and the matched ``items`` (replacing those of an earlier try); a final
    status (``no_match``, ``failed``...) also ends the run."""
    _check(status, RUN_STATUSES, "run")
    finished = None if status == "running" else now
    evaluated = trace.get("evaluated") if isinstance(trace, dict) else None
    ignored = trace.get("ignored") if isinstance(trace, dict) else None
    values: dict[str, Any] = {
        "trace_json": log_json(trace),
        "matched_count": matched_count,
        "evaluated_count": evaluated if isinstance(evaluated, int) else None,
        "ignored_count": ignored if isinstance(ignored, int) and not isinstance(ignored, bool) else None,
    }
    if not is_cancelled(conn, run_pk):  # a cancelled run keeps what its cancel said
        values |= {"status": status, "finished_at": finished}
    change_run(conn, run_pk, **values)
    conn.execute(automation_run_items.delete().where(automation_run_items.c.run_pk == run_pk))
    rows = [
        {"run_pk": run_pk, "table_name": item.table, "key_text": key_text(item.key), "actor": item.actor}
        for item in items[:MAX_RUN_ITEMS]
    ]
    if rows:
        conn.execute(automation_run_items.insert(), rows)


def finish_run(conn: sa.Connection, run_pk: int, status: str, now: dt.datetime) -> None:
    """Set the final status and the finish time (a cancelled run keeps what its cancel said)."""
    _check(status, RUN_STATUSES, "run")
    if is_cancelled(conn, run_pk):
        return
    outputs = conn.execute(sa.select(a.c.output_json).where(a.c.run_pk == run_pk, a.c.status == "success"))
    acted = max((rollups.acted_of(loads(text)) for (text,) in outputs if text), default=0)
    change_run(
        conn, run_pk, status=status, finished_at=None if status == "running" else now, acted_count=acted
    )


def record_action(
    conn: sa.Connection,
    run_pk: int,
    action_id: str,
    *,
    status: str,
    output: Any,
    error: str | None,
    count_attempt: bool,
    now: dt.datetime,
    started_at: dt.datetime | None = None,
) -> None:
    """Insert or update one action's result; ``attempts`` grows by one when ``count_attempt``;
    ``started_at`` is when the recorded attempt started (kept from an earlier record when None)."""
    _check(status, ACTION_STATUSES, "action")
    run = rollups.run_row(conn, run_pk)
    if run is None:
        raise NotFoundError(f"no automation run with id {run_pk}")
    before = rollups.step_row(conn, run_pk, action_id)
    step = 1 if count_attempt else 0
    insert = upsert(conn, a).values(
        run_pk=run_pk,
        action_id=action_id,
        status=status,
        attempts=step,
        output_json=None if output is None else log_json(output),
        error=error,
        updated_at=now,
        started_at=started_at,
    )
    statement = insert.on_conflict_do_update(
        index_elements=[a.c.run_pk, a.c.action_id],
        set_={
            "status": insert.excluded.status,
            "attempts": a.c.attempts + step,
            "output_json": insert.excluded.output_json,
            "error": insert.excluded.error,
            "updated_at": insert.excluded.updated_at,
            "started_at": sa.func.coalesce(insert.excluded.started_at, a.c.started_at),
        },
    )
    try:
        conn.execute(statement)
    except sa.exc.IntegrityError as exc:
        raise NotFoundError(f"no automation run with id {run_pk}") from exc
    after = rollups.step_row(conn, run_pk, action_id)
    rollups.apply(conn, rollups.step_share(run, before), rollups.step_share(run, after))


_RUN_COLUMNS = (
    r.c.id,
    r.c.organization,
    r.c.rule_name,
    r.c.dag_id,
    r.c.run_id,
    r.c.spec_hash,
    r.c.trigger_type,
    r.c.trigger_context_json,
    r.c.status,
    r.c.matched_count,
    r.c.trace_json,
    r.c.started_at,
    r.c.finished_at,
    r.c.cancelled_at,
    r.c.cancelled_by,
)


def _with_actions(conn: sa.Connection, rows: Sequence[Any]) -> list[RunLog]:
    actions: dict[int, list[ActionResult]] = defaultdict(list)
    if rows:
        for row in conn.execute(
            sa.select(
                a.c.run_pk,
                a.c.action_id,
                a.c.status,
                a.c.attempts,
                a.c.output_json,
                a.c.error,
                a.c.updated_at,
            )
            .where(a.c.run_pk.in_([row.id for row in rows]))
            .order_by(a.c.run_pk, a.c.id)
        ):
            actions[row.run_pk].append(
                ActionResult(
                    action_id=row.action_id,
                    status=row.status,
                    attempts=row.attempts,
                    output=loads(row.output_json),
                    error=row.error,
                    updated_at=row.updated_at,
                )
            )
    return [
        RunLog(
            id=row.id,
            organization=row.organization,
            rule_name=row.rule_name,
            dag_id=row.dag_id,
            run_id=row.run_id,
            spec_hash=row.spec_hash,
            trigger_type=row.trigger_type,
            trigger_context=loads(row.trigger_context_json),
            status=row.status,
            matched_count=row.matched_count,
            trace=loads(row.trace_json),
            started_at=row.started_at,
            finished_at=row.finished_at,
            actions=tuple(actions[row.id]),
            cancelled_at=row.cancelled_at,
            cancelled_by=row.cancelled_by,
        )
        for row in rows
    ]


def get_run(conn: sa.Connection, *, dag_id: str, run_id: str) -> RunLog | None:
    """One run with its action results, or None."""
    rows = conn.execute(sa.select(*_RUN_COLUMNS).where(r.c.dag_id == dag_id, r.c.run_id == run_id)).all()
    runs = _with_actions(conn, rows)
    return runs[0] if runs else None


def list_runs(
    conn: sa.Connection, *, organization: str | None, rule_name: str | None, status: str | None, limit: int
) -> list[RunLog]:
    """The newest runs first (two queries: the runs, then all their action results)."""
    query = sa.select(*_RUN_COLUMNS)
    if organization is not None:
        query = query.where(r.c.organization == organization)
    if rule_name is not None:
        query = query.where(r.c.rule_name == rule_name)
    if status is not None:
        query = query.where(r.c.status == status)
    rows = conn.execute(query.order_by(r.c.started_at.desc(), r.c.id.desc()).limit(limit)).all()
    return _with_actions(conn, rows)
