"""Report analytics (rule_compiler/store/report_analytics.py, report_rollups.py) on SQLite and Postgres:
report runs and deliveries written the way the report tasks write them, at times the test chooses,
against numbers computed by hand; a retried run and a rebuild leave them right."""

from __future__ import annotations

import datetime as dt

from rule_compiler.store import RuleStore
from rule_compiler.store.analytics import TimeRange
from rule_compiler.store.report_runs import (
    finish_report_delivery,
    finish_report_run,
    record_file,
    start_report_delivery,
    start_report_run,
)
from rule_compiler.store.rollups import duration_bin

DAY = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
SPAN = TimeRange.of(DAY, DAY + dt.timedelta(days=2), "day")


def at(hours: float, seconds: float = 0) -> dt.datetime:
    return DAY + dt.timedelta(hours=hours, seconds=seconds)


def run(
    store: RuleStore, report_id: str, run_id: str, start: dt.datetime, *, seconds: float, status: str,
    sizes: dict[str, int],
) -> int:  # fmt: skip
    pk = start_report_run(
        store.engine, report_id=report_id, dag_id=f"report__{report_id.replace('/', '__')}", run_id=run_id,
        spec_hash="h" * 64, interval_start=start - dt.timedelta(days=1), interval_end=start,
        logical_date=start, parameters={}, now=start,
    )  # fmt: skip
    for fmt, size in sizes.items():
        record_file(store.engine, pk, fmt, file=f"out.{fmt}", size=size, seconds=0.1)
    finish_report_run(store.engine, pk, status, now=start + dt.timedelta(seconds=seconds))
    return pk


def deliver(store: RuleStore, key: str, report_id: str, when: dt.datetime, outcomes: list[str]) -> None:
    for outcome in outcomes:
        number = start_report_delivery(
            store.engine, key=key, report_id=report_id, interval_end=when, index=0, type="email",
            target="2 recipients", run_id="r", now=when,
        )  # fmt: skip
        assert number is not None
        finish_report_delivery(store.engine, key, status=outcome, now=when)  # type: ignore[arg-type]


def write_reports(store: RuleStore) -> None:
    run(
        store,
        "acme/weekly-sales",
        "r1",
        at(6),
        seconds=4,
        status="success",
        sizes={"xlsx": 1000, "pdf": 3000},
    )
    run(store, "acme/weekly-sales", "r2", at(30), seconds=8, status="partial", sizes={"xlsx": 2000})
    run(store, "acme/stock", "r3", at(7), seconds=1, status="skipped-empty", sizes={})
    run(store, "globex/weekly-sales", "r4", at(6), seconds=2, status="success", sizes={"pdf": 500})  # globex
    deliver(store, "a" * 64, "acme/weekly-sales", at(6, 10), ["retrying", "sent"])
    deliver(store, "b" * 64, "acme/weekly-sales", at(30, 10), ["failed"])


def test_report_analytics_match_the_hand_computed_numbers(store: RuleStore) -> None:
    write_reports(store)
    found = store.report_analytics("acme", SPAN)
    assert (found.summary.runs, found.summary.bytes, dict(found.summary.by_status)) == (
        3, 6000, {"success": 1, "partial": 1, "skipped-empty": 1}
    )  # fmt: skip
    sales = found.reports["weekly-sales"]
    assert (sales.runs, sales.bytes, sales.bytes_per_run) == (2, 6000, 3000)
    # 4 s and 8 s: percentile_cont's median is 6 s; the histogram's is within one bin of it
    assert sales.p50_ms is not None and abs(duration_bin(sales.p50_ms) - duration_bin(6000)) <= 1
    assert (sales.deliveries(), sales.deliveries("sent"), sales.deliveries("failed"), sales.attempts) == (
        2,
        1,
        1,
        3,
    )
    assert found.reports["stock"].runs == 1 and found.reports["stock"].deliveries() == 0
    assert [(p.start, p.summary.runs, p.summary.deliveries()) for p in found.series] == [
        (DAY, 2, 1),
        (DAY + dt.timedelta(days=1), 1, 1),
    ]
    one = store.report_analytics("acme", SPAN, report="stock")
    assert list(one.reports) == ["stock"] and one.summary.runs == 1


def test_a_retried_run_counts_once_with_its_last_outcome_and_a_rebuild_agrees(store: RuleStore) -> None:
    write_reports(store)
    pk = run(
        store, "acme/weekly-sales", "r1", at(6), seconds=5, status="error", sizes={}
    )  # retried: error now
    assert pk == 1
    found = store.report_analytics("acme", SPAN)
    assert dict(found.reports["weekly-sales"].by_status) == {"success": 0, "partial": 1, "error": 1}
    assert found.reports["weekly-sales"].runs == 2
    before = store.report_analytics("acme", TimeRange.of(DAY, DAY + dt.timedelta(days=2), "hour"))
    assert store.rebuild_report_rollups() == 4
    after = store.report_analytics("acme", TimeRange.of(DAY, DAY + dt.timedelta(days=2), "hour"))
    assert _plain(after) == _plain(before)


def _plain(found: object) -> object:
    from rule_compiler.store.report_analytics import ReportAnalytics

    assert isinstance(found, ReportAnalytics)

    def nonzero(counts: dict) -> dict:  # type: ignore[type-arg]
        return {k: v for k, v in counts.items() if v}

    def summary(s):  # type: ignore[no-untyped-def]
        return (nonzero(s.by_status), nonzero(s.histogram), s.bytes, nonzero(s.deliveries_by), s.attempts)

    return (summary(found.summary), {k: summary(v) for k, v in found.reports.items()},
            [(p.start, summary(p.summary)) for p in found.series])  # fmt: skip
