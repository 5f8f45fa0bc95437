"""The report execution log on SQLite and Postgres: runs, deliveries keyed per interval, alert state."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from rule_compiler.runtime.idempotency import generated_delivery_key
from rule_compiler.runtime.report_delivery import delivery_key
from rule_compiler.store import RuleStore
from rule_compiler.store import report_runs as log

NOW = dt.datetime(2026, 11, 23, 6, 30, tzinfo=dt.UTC)
WEEK_END = dt.datetime(2026, 11, 23, 6, 0, tzinfo=dt.UTC)
REPORT = "acme/weekly-sales"


def _start(engine: sa.Engine, run_id: str = "scheduled__1", *, end: dt.datetime = WEEK_END) -> int:
    return log.start_report_run(
        engine,
        report_id=REPORT,
        dag_id="report__acme__weekly-sales",
        run_id=run_id,
        spec_hash="h" * 64,
        interval_start=end - dt.timedelta(days=7),
        interval_end=end,
        logical_date=end - dt.timedelta(days=7),
        parameters={"min_total": 0},
        now=NOW,
    )


def _deliver(engine: sa.Engine, run_id: str, index: int = 0) -> int | None:
    return log.start_report_delivery(
        engine,
        key=delivery_key(REPORT, WEEK_END, index),
        report_id=REPORT,
        interval_end=WEEK_END,
        index=index,
        type="email",
        target="1 recipient",
        run_id=run_id,
        now=NOW,
    )


def test_a_run_is_one_row_filled_in_by_its_tasks(store: RuleStore) -> None:
    engine = store.engine
    run_pk = _start(engine)
    assert _start(engine) == run_pk  # a retried query task finds its row
    log.record_queries(
        engine, run_pk, queries={"daily": {"rows": 5, "truncated": False}}, seconds=1.5, alert=None
    )
    with ThreadPoolExecutor(4) as pool:  # the render tasks run side by side
        list(
            pool.map(
                lambda fmt: log.record_file(engine, run_pk, fmt, file=f"weekly.{fmt}", size=10, seconds=0.2),
                ["csv", "xlsx", "html", "pdf"],
            )
        )
    log.add_error(engine, run_pk, "render_pdf: first")
    log.add_error(engine, run_pk, "render_pdf: second")
    log.finish_report_run(engine, run_pk, "partial", now=NOW, error="delivery 0 failed")
    run = log.get_report_run(engine, dag_id="report__acme__weekly-sales", run_id="scheduled__1")
    assert run is not None and run.report_id == REPORT and run.status == "partial"
    assert set(run.files) == {"csv", "xlsx", "html", "pdf"}
    assert set(run.steps) == {"run_queries", "render_csv", "render_xlsx", "render_html", "render_pdf"}
    assert run.queries == {"daily": {"rows": 5, "truncated": False}} and run.parameters == {"min_total": 0}
    assert run.error == "delivery 0 failed" and run.finished_at == NOW
    assert [r.run_id for r in log.list_report_runs(engine, organization="acme", status="partial")] == [
        "scheduled__1"
    ]
    with pytest.raises(ValueError, match="not 'running'"):
        log.finish_report_run(engine, run_pk, "running", now=NOW)


def test_a_delivery_is_sent_once_per_interval_whatever_the_run(store: RuleStore) -> None:
    engine = store.engine
    key = delivery_key(REPORT, WEEK_END, 0)
    assert _deliver(engine, "run-1") == 1
    log.finish_report_delivery(engine, key, status="retrying", now=NOW, error="SMTP down")
    assert _deliver(engine, "run-1") == 2  # the task's retry
    log.finish_report_delivery(engine, key, status="sent", now=NOW, detail={"files": ["a.pdf"]})
    assert _deliver(engine, "run-2") is None  # another run of the same interval: nothing to send
    log.finish_report_delivery(engine, key, status="failed", now=NOW, error="late")  # never turned back
    (row,) = log.deliveries_of(engine, REPORT, WEEK_END)
    assert (row.status, row.attempts, row.run_id, row.error) == ("sent", 2, "run-1", None)
    assert row.detail == {"files": ["a.pdf"]} and row.sent_at == NOW
    assert (
        delivery_key(REPORT, WEEK_END, 1) != key != delivery_key(REPORT, WEEK_END + dt.timedelta(days=7), 0)
    )


def test_a_generated_run_shows_its_own_deliveries_and_the_reports_runs_theirs(store: RuleStore) -> None:
    engine = store.engine
    generated_id = "generated__" + "a" * 32
    for run_id in ("scheduled__1", generated_id):
        _start(engine, run_id)
    _deliver(engine, "scheduled__1")
    generated_key = generated_delivery_key("e" * 64, 0)  # the action's, for the same index and interval
    assert log.start_report_delivery(
        engine,
        key=generated_key,
        report_id=REPORT,
        interval_end=WEEK_END,
        index=0,
        type="email",
        target="1 recipient",
        run_id=generated_id,
        now=NOW,
    )
    scheduled, generated = (
        log.get_report_run(engine, dag_id="report__acme__weekly-sales", run_id=run_id)
        for run_id in ("scheduled__1", generated_id)
    )
    assert scheduled is not None and generated is not None
    assert [d.idempotency_key for d in log.deliveries_of_run(engine, generated)] == [generated_key]
    own = [d.idempotency_key for d in log.deliveries_of_run(engine, scheduled)]
    assert own == [delivery_key(REPORT, WEEK_END, 0)]
    # a run id with underscores elsewhere is not taken for a generated one (LIKE's `_` is escaped)
    _start(engine, "generatedXX1")
    _deliver(engine, "generatedXX1", index=1)
    lookalike = log.get_report_run(engine, dag_id="report__acme__weekly-sales", run_id="generatedXX1")
    assert lookalike is not None
    assert [d.delivery_index for d in log.deliveries_of_run(engine, lookalike)] == [0, 1]


def test_alert_state_and_the_previous_digest(store: RuleStore) -> None:
    engine = store.engine
    assert log.alert_state(engine, REPORT) is None
    earlier, later = WEEK_END - dt.timedelta(days=7), WEEK_END
    for end, digest in ((earlier, "a" * 64), (later, "b" * 64)):
        run_pk = _start(engine, f"run-{end.date()}", end=end)
        log.record_queries(engine, run_pk, queries={}, seconds=0, alert={"holds": True}, alert_digest=digest)
    assert log.previous_alert_digest(engine, REPORT, before=later) == "a" * 64
    assert log.previous_alert_digest(engine, REPORT, before=earlier) is None
    log.record_alert_sent(engine, REPORT, interval_end=later, digest="b" * 64, run_id="r2", now=NOW)
    log.record_alert_sent(engine, REPORT, interval_end=earlier, digest="a" * 64, run_id="r1", now=NOW)
    state = log.alert_state(engine, REPORT)  # a late run of an older interval does not move it back
    assert state is not None and (state.last_sent_interval_end, state.last_run_id) == (later, "r2")
