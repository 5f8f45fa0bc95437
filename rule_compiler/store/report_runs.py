"""The report execution log: one row per report run, one per delivery, and each alert's state.

A run row is keyed by (dag_id, run_id) and filled in by the run's tasks as they go: the query task
opens it (interval, parameters) and adds rows per query and the alert verdict, each render task adds
its file, the outcome task settles the status. Deliveries are keyed by (report, data interval end,
delivery index) — never the run — so a second run of the same interval finds them ``sent`` and does
not deliver again; each attempt is recorded before and after it is made. Each function is one short
transaction on the rule store's engine, safe on SQLite and Postgres; concurrent writers of one row
meet at its unique key (``INSERT ... ON CONFLICT``) or its row lock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa

from rule_compiler.store._bookkeeping import check_key, check_page, transaction
from rule_compiler.store._json import loads, log_json
from rule_compiler.store.report_rollups import counted
from rule_compiler.store.runs import upsert
from rule_compiler.store.tables import (
    REPORT_DELIVERY_TYPES,
    REPORT_RUN_STATUSES,
    report_alerts,
    report_deliveries,
    report_runs,
)

r, d, a = report_runs, report_deliveries, report_alerts
DeliveryFinish = Literal["sent", "retrying", "failed"]
#: Run statuses after which the outcome task leaves the run as it is.
SETTLED_BEFORE_DELIVERY = frozenset({"skipped-empty", "not-triggered"})
MAX_ERROR = 2_000
#: The run id prefix of a report run a ``generate_report`` action or a report node made (ADR 0010).
GENERATED_RUN_PREFIX = "generated__"


@dataclass(frozen=True)
class ReportDeliveryRow:
    """One delivery of one interval of a report."""

    idempotency_key: str
    organization: str
    report_id: str
    interval_end: dt.datetime
    delivery_index: int
    type: str
    target: str
    status: str
    attempts: int
    run_id: str
    detail: dict[str, Any] | None
    error: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    sent_at: dt.datetime | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields (times as ISO 8601)."""
        return _plain(self.__dict__)


@dataclass(frozen=True)
class ReportRun:
    """One run of a report as its tasks recorded it."""

    id: int
    organization: str
    report_name: str
    dag_id: str
    run_id: str
    spec_hash: str
    interval_start: dt.datetime
    interval_end: dt.datetime
    logical_date: dt.datetime | None
    status: str
    parameters: dict[str, Any]
    queries: dict[str, Any]
    files: dict[str, Any]
    steps: dict[str, Any]
    alert: dict[str, Any] | None
    alert_digest: str | None
    error: str | None
    started_at: dt.datetime
    finished_at: dt.datetime | None

    @property
    def report_id(self) -> str:
        return f"{self.organization}/{self.report_name}"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields (times as ISO 8601)."""
        return _plain(self.__dict__)


@dataclass(frozen=True)
class AlertState:
    """When an alert-mode report was last sent (the sending run's interval end) and its digest."""

    report_id: str
    last_sent_interval_end: dt.datetime
    last_digest: str | None
    last_run_id: str


# --- runs ----------------------------------------------------------------------------------------


def start_report_run(
    engine: sa.Engine,
    *,
    report_id: str,
    dag_id: str,
    run_id: str,
    spec_hash: str,
    interval_start: dt.datetime,
    interval_end: dt.datetime,
    logical_date: dt.datetime | None,
    parameters: Mapping[str, Any],
    now: dt.datetime,
) -> int:
    """Open the run's row (a retry gets the same id back, its status ``running`` again)."""
    organization, name = split_report_id(report_id)
    same_run = sa.and_(r.c.dag_id == dag_id, r.c.run_id == run_id)
    with transaction(engine, write=True) as conn, counted(conn, r, same_run):
        conn.execute(
            upsert(conn, r)
            .values(
                organization=organization,
                report_name=name,
                dag_id=dag_id,
                run_id=run_id,
                spec_hash=spec_hash,
                interval_start=interval_start,
                interval_end=interval_end,
                logical_date=logical_date,
                status="running",
                parameters_json=log_json(dict(parameters)),
                started_at=now,
            )
            .on_conflict_do_update(
                index_elements=[r.c.dag_id, r.c.run_id],
                set_={"status": "running", "error": None, "finished_at": None},
            )
        )
        return int(
            conn.execute(sa.select(r.c.id).where(r.c.dag_id == dag_id, r.c.run_id == run_id)).scalar_one()
        )


def record_queries(
    engine: sa.Engine,
    run_pk: int,
    *,
    queries: Mapping[str, Any],
    seconds: float,
    alert: Mapping[str, Any] | None = None,
    alert_digest: str | None = None,
) -> None:
    """The rows each query returned (and the alert check's verdict), from the query task."""
    with transaction(engine, write=True) as conn:
        steps = _locked_json(conn, run_pk, r.c.steps_json)
        conn.execute(
            r.update()
            .where(r.c.id == run_pk)
            .values(
                queries_json=log_json(dict(queries)),
                steps_json=log_json({**steps, "run_queries": round(seconds, 3)}),
                alert_json=log_json(dict(alert)) if alert is not None else None,
                alert_digest=alert_digest,
            )
        )


def record_file(engine: sa.Engine, run_pk: int, fmt: str, *, file: str, size: int, seconds: float) -> None:
    """One rendered file (name and bytes), from its render task; renders run side by side."""
    with transaction(engine, write=True) as conn, counted(conn, r, r.c.id == run_pk):
        files = _locked_json(conn, run_pk, r.c.files_json)
        steps = loads(conn.execute(sa.select(r.c.steps_json).where(r.c.id == run_pk)).scalar_one()) or {}
        files[fmt] = {"file": file, "bytes": size, "seconds": round(seconds, 3)}
        steps[f"render_{fmt}"] = round(seconds, 3)
        conn.execute(
            r.update().where(r.c.id == run_pk).values(files_json=log_json(files), steps_json=log_json(steps))
        )


def finish_report_run(
    engine: sa.Engine, run_pk: int, status: str, *, now: dt.datetime, error: str | None = None
) -> None:
    """Settle the run's status (and error); ``finished_at`` is stamped."""
    if status not in REPORT_RUN_STATUSES or status == "running":
        raise ValueError(
            f"a finished report run is one of {', '.join(REPORT_RUN_STATUSES[1:])}, not {status!r}"
        )
    with transaction(engine, write=True) as conn, counted(conn, r, r.c.id == run_pk):
        conn.execute(
            r.update().where(r.c.id == run_pk).values(status=status, error=_truncate(error), finished_at=now)
        )


def add_error(engine: sa.Engine, run_pk: int, error: str) -> None:
    """Add a line to the run's error (a step that failed; the outcome task settles the status)."""
    with transaction(engine, write=True) as conn:
        current = conn.execute(sa.select(r.c.error).where(r.c.id == run_pk).with_for_update()).scalar()
        text = f"{current}\n{error}" if current else error
        conn.execute(r.update().where(r.c.id == run_pk).values(error=_truncate(text)))


def get_report_run(engine: sa.Engine, *, dag_id: str, run_id: str) -> ReportRun | None:
    """The run's row, or None when its query task never started."""
    with transaction(engine) as conn:
        row = conn.execute(sa.select(r).where(r.c.dag_id == dag_id, r.c.run_id == run_id)).first()
    return _run(row) if row is not None else None


def list_report_runs(
    engine: sa.Engine,
    *,
    organization: str | None = None,
    report_name: str | None = None,
    status: str | None = None,
    limit: int = 20,
    offset: int = 0,
) -> list[ReportRun]:
    """Runs, newest first, filtered by whatever is given."""
    check_page(limit, offset)
    if status is not None and status not in REPORT_RUN_STATUSES:
        raise ValueError(
            f"unknown report run status {status!r}; expected one of {', '.join(REPORT_RUN_STATUSES)}"
        )
    filters = [
        column == value
        for column, value in (
            (r.c.organization, organization),
            (r.c.report_name, report_name),
            (r.c.status, status),
        )
        if value is not None
    ]
    query = (
        sa.select(r)
        .where(*filters)
        .order_by(r.c.started_at.desc(), r.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    with transaction(engine) as conn:
        return [_run(row) for row in conn.execute(query)]


def previous_alert_digest(engine: sa.Engine, report_id: str, *, before: dt.datetime) -> str | None:
    """The digest checked by the latest run of an earlier interval (what ``changed`` compares with)."""
    organization, name = split_report_id(report_id)
    query = (
        sa.select(r.c.alert_digest)
        .where(
            r.c.organization == organization,
            r.c.report_name == name,
            r.c.interval_end < before,
            r.c.alert_digest.is_not(None),
        )
        .order_by(r.c.interval_end.desc(), r.c.started_at.desc())
        .limit(1)
    )
    with transaction(engine) as conn:
        value = conn.execute(query).scalar()
    return None if value is None else str(value)


# --- deliveries ----------------------------------------------------------------------------------


def start_report_delivery(
    engine: sa.Engine,
    *,
    key: str,
    report_id: str,
    interval_end: dt.datetime,
    index: int,
    type: str,
    target: str,
    run_id: str,
    now: dt.datetime,
) -> int | None:
    """Record an attempt before it is made: its number (1, 2, ... across runs and retries), or None
    when this delivery of this interval was already sent (then nothing may be sent again)."""
    check_key(key)
    if type not in REPORT_DELIVERY_TYPES:
        raise ValueError(
            f"unknown delivery type {type!r}; expected one of {', '.join(REPORT_DELIVERY_TYPES)}"
        )
    organization, _ = split_report_id(report_id)
    with transaction(engine, write=True) as conn, counted(conn, d, d.c.idempotency_key == key):
        inserted = conn.execute(
            upsert(conn, d)
            .values(
                idempotency_key=key,
                organization=organization,
                report_id=report_id,
                interval_end=interval_end,
                delivery_index=index,
                type=type,
                target=target[:500],
                status="sending",
                attempts=1,
                run_id=run_id,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=[d.c.idempotency_key])
        ).rowcount
        if inserted:
            return 1
        row = conn.execute(
            sa.select(d.c.status, d.c.attempts).where(d.c.idempotency_key == key).with_for_update()
        ).one()
        if row.status == "sent":
            return None
        attempts = int(row.attempts) + 1
        conn.execute(
            d.update()
            .where(d.c.idempotency_key == key)
            .values(status="sending", attempts=attempts, run_id=run_id, target=target[:500], updated_at=now)
        )
        return attempts


def finish_report_delivery(
    engine: sa.Engine,
    key: str,
    *,
    status: DeliveryFinish,
    now: dt.datetime,
    error: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """How the attempt ended; ``sent`` stamps ``sent_at``. A sent delivery is never turned back."""
    if status not in ("sent", "retrying", "failed"):
        raise ValueError(f"a delivery attempt ends sent, retrying or failed, not {status!r}")
    values: dict[str, Any] = {"status": status, "updated_at": now, "error": _truncate(error)}
    if status == "sent":
        values.update(sent_at=now, error=None)
    if detail is not None:
        values["detail_json"] = log_json(dict(detail))
    with transaction(engine, write=True) as conn, counted(conn, d, d.c.idempotency_key == key):
        conn.execute(d.update().where(d.c.idempotency_key == key, d.c.status != "sent").values(**values))


def deliveries_of(engine: sa.Engine, report_id: str, interval_end: dt.datetime) -> list[ReportDeliveryRow]:
    """The deliveries of one interval of a report, by index."""
    query = (
        sa.select(d)
        .where(d.c.report_id == report_id, d.c.interval_end == interval_end)
        .order_by(d.c.delivery_index)
    )
    with transaction(engine) as conn:
        return [_delivery(row) for row in conn.execute(query)]


def deliveries_of_run(engine: sa.Engine, run: ReportRun) -> list[ReportDeliveryRow]:
    """The deliveries that belong to ``run``: a generated run's own (keyed by its action), else those
    of the run's interval made by the report's own runs (a second run of an interval shows the first's)."""
    generated = d.c.run_id.startswith(GENERATED_RUN_PREFIX, autoescape=True)
    mine = d.c.run_id == run.run_id if run.run_id.startswith(GENERATED_RUN_PREFIX) else sa.not_(generated)
    query = (
        sa.select(d)
        .where(d.c.report_id == run.report_id, d.c.interval_end == run.interval_end, mine)
        .order_by(d.c.delivery_index)
    )
    with transaction(engine) as conn:
        return [_delivery(row) for row in conn.execute(query)]


def get_report_delivery(engine: sa.Engine, key: str) -> ReportDeliveryRow | None:
    """The delivery of ``key``, or None."""
    with transaction(engine) as conn:
        row = conn.execute(sa.select(d).where(d.c.idempotency_key == key)).first()
    return _delivery(row) if row is not None else None


# --- alert state ---------------------------------------------------------------------------------


def alert_state(engine: sa.Engine, report_id: str) -> AlertState | None:
    """When the alert was last sent, or None (never)."""
    with transaction(engine) as conn:
        row = conn.execute(sa.select(a).where(a.c.report_id == report_id)).first()
    if row is None:
        return None
    return AlertState(
        report_id=row.report_id,
        last_sent_interval_end=row.last_sent_interval_end,
        last_digest=row.last_digest,
        last_run_id=row.last_run_id,
    )


def record_alert_sent(
    engine: sa.Engine,
    report_id: str,
    *,
    interval_end: dt.datetime,
    digest: str | None,
    run_id: str,
    now: dt.datetime,
) -> None:
    """Remember that the alert went out for this interval (a later interval only moves it forward)."""
    organization, _ = split_report_id(report_id)
    with transaction(engine, write=True) as conn:
        insert = upsert(conn, a).values(
            report_id=report_id,
            organization=organization,
            last_sent_interval_end=interval_end,
            last_digest=digest,
            last_run_id=run_id,
            updated_at=now,
        )
        conn.execute(
            insert.on_conflict_do_update(
                index_elements=[a.c.report_id],
                set_={
                    "last_sent_interval_end": insert.excluded.last_sent_interval_end,
                    "last_digest": insert.excluded.last_digest,
                    "last_run_id": insert.excluded.last_run_id,
                    "updated_at": insert.excluded.updated_at,
                },
                where=a.c.last_sent_interval_end <= insert.excluded.last_sent_interval_end,
            )
        )


# --- helpers -------------------------------------------------------------------------------------


def split_report_id(report_id: str) -> tuple[str, str]:
    """``acme/weekly-sales`` → (organization, name)."""
    organization, sep, name = report_id.partition("/")
    if not sep or not organization or not name:
        raise ValueError(f"a report id is organization/name, not {report_id!r}")
    return organization, name


def _locked_json(conn: sa.Connection, run_pk: int, column: sa.Column[Any]) -> dict[str, Any]:
    """A JSON column of the run, its row locked for this transaction (Postgres; SQLite's write lock)."""
    value = conn.execute(sa.select(column).where(r.c.id == run_pk).with_for_update()).scalar_one_or_none()
    found = loads(value)
    return dict(found) if isinstance(found, dict) else {}


def _run(row: sa.Row[Any]) -> ReportRun:
    data = dict(row._mapping)
    for name in ("parameters", "queries", "files", "steps"):
        data[name] = loads(data.pop(f"{name}_json")) or {}
    data["alert"] = loads(data.pop("alert_json"))
    return ReportRun(**data)


def _delivery(row: sa.Row[Any]) -> ReportDeliveryRow:
    data = dict(row._mapping)
    data.pop("id")
    data["detail"] = loads(data.pop("detail_json"))
    return ReportDeliveryRow(**data)


def _plain(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {
        name: value.isoformat() if isinstance(value, dt.datetime) else value for name, value in fields.items()
    }


def _truncate(error: str | None) -> str | None:
    return error[:MAX_ERROR] if error else None
