"""The definitions board's reads (rule_compiler/store/definition_board.py) on SQLite and Postgres: every
live definition of the kinds that run, and for a page of them the latest run and a daily tally read from
the rollups, against runs written the way the tasks write them at times the test chooses."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from rule_compiler.canonical import canonical_json, content_hash
from rule_compiler.store import DefinitionWrite, RuleStore
from rule_compiler.store.definition_board import DayTally, LastRun
from rule_compiler.store.report_runs import finish_report_run, start_report_run
from tests.analytics_log import DAY, Log, at

NOW = DAY + dt.timedelta(days=1, hours=20)  # 2026-11-21 20:00 UTC


def _put(store: RuleStore, kind: str, name: str, *, organization: str = "acme", **source: Any) -> None:
    document = {"kind": kind, "name": name, **source}
    spec = {"dag_id": f"{kind}__{organization}__{name}"}
    store.apply(
        DefinitionWrite(
            organization=organization,
            kind=kind,
            name=name,
            dag_id=spec["dag_id"],
            source=document,
            source_hash=content_hash(document),
            spec_json=canonical_json(spec),
            spec_hash=content_hash(spec),
            active=True,
            actor="alice",
            compiler_version="0.1.0",
        )
    )


def _report_run(store: RuleStore, name: str, run_id: str, start: dt.datetime, status: str) -> None:
    pk = start_report_run(
        store.engine, report_id=f"acme/{name}", dag_id=f"report__acme__{name}", run_id=run_id,
        spec_hash="h" * 64, interval_start=start - dt.timedelta(days=1), interval_end=start,
        logical_date=start, parameters={}, now=start,
    )  # fmt: skip
    finish_report_run(store.engine, pk, status, now=start + dt.timedelta(seconds=3))


def _run(
    log: Log, run_id: str, started: dt.datetime, status: str, *, name: str = "r1", kind: str = "rule"
) -> None:
    pk = log.start(run_id, started, name=name, kind=kind)
    log.evaluate(pk, 2, 0 if status == "no_match" else 1, started + dt.timedelta(seconds=1))
    if status != "no_match":
        log.finish(pk, status, started + dt.timedelta(seconds=2))


@pytest.fixture
def board(store: RuleStore) -> RuleStore:
    for kind, name in (("rule", "r1"), ("workflow", "r1"), ("report", "weekly"), ("rule", "quiet")):
        _put(store, kind, name, owner="ops")
    _put(store, "notification_template", "t1")  # a kind that does not run: not on the board
    _put(store, "rule", "theirs", organization="globex")
    _put(store, "rule", "gone")
    store.delete(organization="acme", kind="rule", name="gone", actor="alice")
    log = Log(store)
    _run(log, "a", at(10), "success")
    _run(log, "b", at(11), "failed")
    _run(log, "c", at(12), "no_match")
    _run(log, "d", at(34), "success")  # the next day, the latest
    _run(log, "w", at(9), "partial", kind="workflow")  # same name, the workflow's own run
    _report_run(store, "weekly", "x", at(6), "success")
    _report_run(store, "weekly", "y", at(30), "error")
    return store


def test_entries_are_the_live_definitions_that_run_by_name(board: RuleStore) -> None:
    entries = board.board_entries("acme")
    assert [(e.kind, e.name) for e in entries] == [
        ("rule", "quiet"),
        ("rule", "r1"),
        ("workflow", "r1"),
        ("report", "weekly"),
    ]
    first = entries[0]
    assert (first.source["owner"], first.updated_by, first.version, first.active) == ("ops", "alice", 1, True)
    assert first.updated_at.tzinfo is not None


def test_stats_give_the_last_run_and_a_tally_per_day(board: RuleStore) -> None:
    keys = [("rule", "r1"), ("workflow", "r1"), ("report", "weekly"), ("rule", "quiet")]
    stats = board.board_stats("acme", keys, days=3, now=NOW)
    day0, day1, day2 = (DAY.date() + dt.timedelta(days=n) for n in (-1, 0, 1))
    rule = stats[("rule", "r1")]
    assert rule.last_run == LastRun("d", "success", at(34), at(34, 2))
    # runs count every finished run (no match included); success and failed only their own
    assert rule.days == [DayTally(day0, 0, 0, 0), DayTally(day1, 3, 1, 1), DayTally(day2, 1, 1, 0)]
    workflow = stats[("workflow", "r1")]
    assert workflow.last_run is not None and workflow.last_run.run_id == "w"
    assert [(t.runs, t.failed) for t in workflow.days] == [(0, 0), (1, 1), (0, 0)]  # partial counts as failed
    report = stats[("report", "weekly")]
    assert report.last_run is not None and (report.last_run.run_id, report.last_run.status) == ("y", "error")
    assert [(t.runs, t.succeeded, t.failed) for t in report.days] == [(0, 0, 0), (1, 1, 0), (1, 0, 1)]
    quiet = stats[("rule", "quiet")]
    assert quiet.last_run is None and [t.runs for t in quiet.days] == [0, 0, 0]


def test_the_window_ends_today_and_a_running_run_is_the_last_but_not_counted(board: RuleStore) -> None:
    log = Log(board)
    pk = log.start("e", at(40), name="r1")
    log.evaluate(pk, 1, 1, at(40, 1))  # still running
    stats = board.board_stats("acme", [("rule", "r1")], days=1, now=NOW)[("rule", "r1")]
    assert stats.last_run is not None and (stats.last_run.run_id, stats.last_run.status) == ("e", "running")
    assert stats.days == [DayTally(DAY.date() + dt.timedelta(days=1), 1, 1, 0)]


def test_another_organizations_runs_never_show(board: RuleStore) -> None:
    assert board.board_stats("globex", [("rule", "r1")], days=3, now=NOW)[("rule", "r1")].last_run is None
    assert [e.name for e in board.board_entries("globex")] == ["theirs"]


@pytest.mark.parametrize("days", [0, 91])
def test_days_are_bounded(board: RuleStore, days: int) -> None:
    with pytest.raises(ValueError, match="days must be 1 to 90"):
        board.board_stats("acme", [("rule", "r1")], days=days, now=NOW)
