"""A small automation log written the way the tasks write it, at times a test chooses: the fixture of
the analytics tests (store, REST, CLI), whose numbers are computed by hand in
tests/store/test_store_analytics.py."""

from __future__ import annotations

import datetime as dt
from typing import Any

from rule_compiler.store import RuleStore, runs
from rule_compiler.store.analytics import TimeRange

DAY = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
SPAN = TimeRange.of(DAY, DAY + dt.timedelta(days=2), "day")


def at(hours: float, seconds: float = 0) -> dt.datetime:
    return DAY + dt.timedelta(hours=hours, seconds=seconds)


class Log:
    """Writes the automation log the way the tasks do, at times the test chooses."""

    def __init__(self, store: RuleStore) -> None:
        self.store = store

    def _tx(self) -> Any:
        return self.store._db.transaction(write=True)

    def start(
        self, run_id: str, started: dt.datetime, *, name: str = "r1", kind: str = "rule", org: str = "acme"
    ) -> int:
        with self._tx() as conn:
            return runs.start_run(
                conn,
                organization=org,
                rule_name=name,
                dag_id=f"{kind}__{org}__{name}",
                run_id=run_id,
                spec_hash="h" * 64,
                trigger_type="schedule",
                trigger_context={},
                now=started,
            )

    def evaluate(self, pk: int, evaluated: int, matched: int, now: dt.datetime) -> None:
        with self._tx() as conn:
            runs.record_evaluation(
                conn,
                pk,
                trace={"evaluated": evaluated, "matched": matched},
                matched_count=matched,
                status="running" if matched else "no_match",
                now=now,
            )

    def action(
        self,
        pk: int,
        status: str,
        started: dt.datetime,
        now: dt.datetime,
        *,
        output: Any = None,
        error: str | None = None,
        action_id: str = "flag",
    ) -> None:
        with self._tx() as conn:
            runs.record_action(
                conn,
                pk,
                action_id,
                status=status,
                output=output,
                error=error,
                count_attempt=True,
                now=now,
                started_at=started,
            )

    def finish(self, pk: int, status: str, now: dt.datetime) -> None:
        with self._tx() as conn:
            runs.finish_run(conn, pk, status, now)


def write_scenario(store: RuleStore) -> None:
    log = Log(store)
    # A: 10 tested, 3 matched, flag acted on 3 (one by an earlier attempt), 2 s.
    a = log.start("A", at(10))
    log.evaluate(a, 10, 3, at(10, 0.2))
    log.action(a, "success", at(10, 1), at(10, 1.5), output={"applied": 2, "already_applied": 1})
    log.finish(a, "success", at(10, 2))
    # B: nothing matched, 1 s.
    b = log.start("B", at(10.5))
    log.evaluate(b, 5, 0, at(10.5, 1))
    # C: 4 tested, 2 matched, flag failed after a retry, 4 s.
    c = log.start("C", at(11))
    log.evaluate(c, 4, 2, at(11, 0.5))
    log.action(c, "retrying", at(11, 1), at(11, 2), error="TimeoutError: the host did not answer")
    log.action(c, "failed", at(11, 2.5), at(11, 3), error="TimeoutError: again")
    log.finish(c, "failed", at(11, 4))
    # D (the next day): a retry succeeded, and record_outcome ran twice; 8 s.
    d = log.start("D", at(33))
    log.evaluate(d, 1, 1, at(33, 1))
    log.action(d, "retrying", at(33, 1), at(33, 2), error="ConnectionError: refused")
    log.action(d, "success", at(33, 5), at(33, 7), output={"applied": 1})
    log.finish(d, "success", at(33, 8))
    log.finish(d, "success", at(33, 8))
    # E: a workflow's run, partial; 16 s.
    e = log.start("E", at(12), name="w1", kind="workflow")
    log.evaluate(e, 2, 2, at(12, 1))
    log.action(e, "success", at(12, 2), at(12, 3), output={"items": 2}, action_id="check")
    log.action(e, "failed", at(12, 3), at(12, 4), error="PermanentActionError: no row", action_id="write")
    log.finish(e, "partial", at(12, 16))
    # F: another organization's run; G: still running. Neither shows.
    f = log.start("F", at(10), org="other")
    log.evaluate(f, 9, 9, at(10, 1))
    log.finish(f, "success", at(10, 2))
    g = log.start("G", at(13))
    log.evaluate(g, 3, 3, at(13, 1))
