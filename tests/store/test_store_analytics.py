"""Analytics from the rollups, on SQLite and Postgres (migration 0008, ADR 0012): the numbers of a small
hand-computed log, rollups that stay right through retries, repeated finishes, cancels and purges, and
a rebuild from scratch that gives the same rows."""

from __future__ import annotations

import datetime as dt
import random
import statistics
from typing import Any

import pytest
import sqlalchemy as sa

from rule_compiler.store import RuleStore
from rule_compiler.store.analytics import TimeRange, percentile
from rule_compiler.store.approvals import cancel_run
from rule_compiler.store.rollups import acted_of, bin_value, duration_bin, error_class
from rule_compiler.store.tables import (
    analytics_durations,
    analytics_errors,
    analytics_runs,
    analytics_steps,
    automation_runs,
)
from tests.analytics_log import DAY, SPAN, Log, at, write_scenario


def test_an_organization_overview_matches_the_hand_computed_numbers(store: RuleStore) -> None:
    write_scenario(store)
    overview = store.organization_analytics("acme", SPAN)
    total = overview.summary
    assert (total.runs, total.no_match, total.success, total.failed, total.partial) == (5, 1, 2, 1, 1)
    assert (total.evaluated, total.matched, total.acted) == (10 + 5 + 4 + 1 + 2, 3 + 0 + 2 + 1 + 2, 3 + 1 + 2)
    assert (total.success_rate, total.failure_rate, total.partial_rate) == (0.5, 0.25, 0.25)
    assert total.match_rate == 8 / 22
    # durations 1, 2, 4, 8 and 16 s: the median is 4 s; p95 (position 3.8) is 8 + 0.8 * 8 = 14.4 s
    assert total.p50_ms == bin_value(duration_bin(4000))
    assert total.p95_ms is not None and abs(duration_bin(total.p95_ms) - duration_bin(14_400)) <= 1
    assert [(p.start, p.summary.runs, p.summary.success) for p in overview.series] == [
        (DAY, 4, 1),
        (DAY + dt.timedelta(days=1), 1, 1),
    ]
    assert [(d.kind, d.name, d.summary.runs) for d in overview.definitions] == [
        ("rule", "r1", 4),
        ("workflow", "w1", 1),
    ]
    assert [(e.name, e.step, e.error_class, e.count) for e in overview.errors] == [
        ("r1", "flag", "TimeoutError", 1),
        ("w1", "write", "PermanentActionError", 1),
    ]
    assert overview.errors[0].first_seen == overview.errors[0].last_seen == at(11, 3)


def test_a_definition_shows_its_steps_series_and_errors(store: RuleStore) -> None:
    write_scenario(store)
    r1 = store.definition_analytics("acme", "rule", "r1", TimeRange.of(DAY, at(48), "hour"))
    assert [(p.start, p.summary.runs) for p in r1.series] == [(at(10), 2), (at(11), 1), (at(33), 1)]
    assert r1.summary.runs == 4 and r1.summary.success_rate == 2 / 3
    [flag] = r1.steps
    assert (flag.step, flag.success, flag.failed, flag.skipped) == ("flag", 2, 1, 0)
    assert (flag.attempts, flag.retries, flag.acted) == (5, 2, 4)
    # the recorded attempts took 0.5 s (A), 0.5 s (C's last) and 2 s (D's last): p95 = 0.5 + 0.9 * 1.5 s
    assert flag.p50_ms == bin_value(duration_bin(500))
    assert flag.p95_ms is not None and abs(duration_bin(flag.p95_ms) - duration_bin(1850)) <= 1
    assert [(e.error_class, e.count) for e in r1.errors] == [("TimeoutError", 1)]
    w1 = store.definition_analytics("acme", "workflow", "w1", SPAN)
    assert [(s.step, s.success, s.failed, s.acted) for s in w1.steps] == [
        ("check", 1, 0, 2),
        ("write", 0, 1, 0),
    ]
    nothing = store.definition_analytics("acme", "rule", "never-ran", SPAN)
    assert nothing.summary.runs == 0 and nothing.summary.p50_ms is None and nothing.series == []


def _rollup_rows(store: RuleStore) -> dict[str, list[tuple[Any, ...]]]:
    """Each rollup table's rows with a non-zero sum (a change taken back leaves a row of zeros)."""
    rows: dict[str, list[tuple[Any, ...]]] = {}
    with store.engine.connect() as conn:
        for table in (analytics_runs, analytics_steps, analytics_durations, analytics_errors):
            sums = [
                c.name
                for c in table.columns
                if not c.primary_key and c.name not in ("first_seen", "last_seen")
            ]
            rows[table.name] = sorted(
                tuple(row) for row in conn.execute(sa.select(table)) if any(row._mapping[c] for c in sums)
            )
    return rows


def test_a_rebuild_from_the_raw_log_gives_the_rows_kept_as_runs_finished(store: RuleStore) -> None:
    write_scenario(store)
    kept = _rollup_rows(store)
    assert kept["analytics_runs"] and kept["analytics_errors"]
    assert store.rebuild_rollups() == 7
    rebuilt = _rollup_rows(store)
    for name in ("analytics_runs", "analytics_steps", "analytics_durations"):
        assert rebuilt[name] == kept[name], name
    # counts equal; first and last seen of a rebuilt error are those of the results as they are now
    assert [row[:6] for row in rebuilt["analytics_errors"]] == [row[:6] for row in kept["analytics_errors"]]


def test_a_rebuild_from_a_moment_keeps_the_hours_before_it(store: RuleStore) -> None:
    write_scenario(store)
    before = store.organization_analytics("acme", SPAN)
    with store.engine.begin() as conn:
        conn.execute(automation_runs.delete().where(automation_runs.c.started_at < at(24)))
    assert store.rebuild_rollups(since=at(24)) == 1  # D only
    assert store.organization_analytics("acme", SPAN) == before


def test_purging_the_raw_log_leaves_the_analytics_as_they_were(store: RuleStore) -> None:
    write_scenario(store)
    before = store.organization_analytics("acme", SPAN)
    detail = store.definition_analytics("acme", "rule", "r1", SPAN)
    with store.engine.begin() as conn:
        conn.execute(automation_runs.delete())  # action results go with them (ON DELETE CASCADE)
    assert store.list_runs(organization="acme") == []
    assert store.organization_analytics("acme", SPAN) == before
    assert store.definition_analytics("acme", "rule", "r1", SPAN) == detail


def test_a_cancelled_run_counts_once_as_failed_and_a_late_finish_changes_nothing(store: RuleStore) -> None:
    log = Log(store)
    pk = log.start("waiting", at(9))
    log.evaluate(pk, 1, 1, at(9, 1))
    with store._db.transaction(write=True) as conn:
        assert cancel_run(conn, dag_id="rule__acme__r1", run_id="waiting", actor="ann", now=at(9, 30))
    log.finish(pk, "success", at(9, 40))  # a task that was already running records late
    summary = store.organization_analytics("acme", SPAN).summary
    assert (summary.runs, summary.failed, summary.success) == (1, 1, 0)
    assert summary.p50_ms == bin_value(duration_bin(30_000))


def test_a_status_that_changes_moves_the_run_between_rows(store: RuleStore) -> None:
    log = Log(store)
    pk = log.start("X", at(9))
    log.evaluate(pk, 2, 2, at(9, 1))
    log.finish(pk, "failed", at(9, 2))
    log.finish(pk, "success", at(9, 3))  # e.g. a cleared and re-run record_outcome
    summary = store.organization_analytics("acme", SPAN).summary
    assert (summary.runs, summary.failed, summary.success) == (1, 0, 1)
    assert summary.p50_ms == bin_value(duration_bin(3000))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_histogram_percentile_is_within_one_bin_of_the_exact_one(seed: int) -> None:
    rng = random.Random(seed)  # noqa: S311 - test data
    durations = [rng.lognormvariate(7, 1.5) for _ in range(rng.randint(1, 3000))]
    histogram: dict[int, int] = {}
    for value in durations:
        histogram[duration_bin(value)] = histogram.get(duration_bin(value), 0) + 1
    for fraction in (0.5, 0.95):
        exact = (
            statistics.quantiles(durations, n=100, method="inclusive")[int(fraction * 100) - 1]
            if len(durations) > 1
            else durations[0]
        )
        estimate = percentile(histogram, fraction)
        assert estimate is not None
        assert abs(duration_bin(estimate) - duration_bin(exact)) <= 1


def test_the_pieces_a_share_is_made_of() -> None:
    assert (
        duration_bin(0.2) == 0 and duration_bin(1) == 1 and duration_bin(1.18) == 1 and duration_bin(1.2) == 2
    )
    assert error_class("TimeoutError: slow") == "TimeoutError" and error_class("it broke") == "Error"
    assert error_class(None) is None
    assert acted_of({"delivered": 2, "already_delivered": 1, "failed": 4}) == 3
    assert acted_of({"items": 5, "keys": []}) == 5 and acted_of({"muted": 3}) == 0 and acted_of(None) == 0


@pytest.mark.parametrize(
    ("since", "until", "message"),
    [
        (at(2), at(1), "before"),
        (DAY, DAY + dt.timedelta(days=401), "at most 400 days"),
        (DAY.replace(tzinfo=None), at(1), "UTC offset"),
    ],
)
def test_a_bad_range_is_refused(since: dt.datetime, until: dt.datetime, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TimeRange.of(since, until)


def test_a_range_covers_whole_hours() -> None:
    span = TimeRange.of(at(1, 1800), at(2, 1), "hour")
    assert (span.since, span.until) == (at(1), at(3))


@pytest.mark.parametrize(
    ("since", "until"),
    [
        (at(10.5), at(33)),  # less than a whole day: hourly rows only
        (at(-4), at(34)),  # whole days in the middle, hours at both ends
        (at(11), at(48)),  # hours before the first midnight, then whole days
        (at(0), at(48)),  # whole days only
    ],
)
def test_a_range_by_day_adds_up_to_the_same_range_by_hour(
    store: RuleStore, since: dt.datetime, until: dt.datetime
) -> None:
    write_scenario(store)
    by_day = store.organization_analytics("acme", TimeRange.of(since, until, "day"))
    by_hour = store.organization_analytics("acme", TimeRange.of(since, until, "hour"))
    assert by_day.summary == by_hour.summary
    assert by_day.definitions == by_hour.definitions and by_day.errors == by_hour.errors
    days: dict[dt.datetime, int] = {}
    for point in by_hour.series:
        start = point.start.replace(hour=0)
        days[start] = days.get(start, 0) + point.summary.runs
    assert {p.start: p.summary.runs for p in by_day.series} == days
    detail_day = store.definition_analytics("acme", "rule", "r1", TimeRange.of(since, until, "day"))
    detail_hour = store.definition_analytics("acme", "rule", "r1", TimeRange.of(since, until, "hour"))
    assert (detail_day.summary, detail_day.steps) == (detail_hour.summary, detail_hour.steps)


@pytest.mark.postgres
def test_concurrent_writers_leave_the_rollups_equal_to_a_rebuild(postgres_url: str) -> None:
    """Eight threads finish and re-finish runs of one hour (the same rollup rows) and record their
    actions at once: the row locks and the fixed order of the rollup upserts keep every sum exact
    (nothing counted twice, no deadlock)."""
    from concurrent.futures import ThreadPoolExecutor

    store = RuleStore(postgres_url)
    store.upgrade()
    log = Log(store)
    pks = [log.start(f"c{i}", at(10, i)) for i in range(16)]
    for pk in pks:
        log.evaluate(pk, 3, 2, at(10, 30))

    def work(i: int) -> None:
        pk = pks[i % len(pks)]
        for attempt in range(3):
            status = ("retrying", "failed", "success")[(i + attempt) % 3]
            log.action(
                pk, status, at(10, 40), at(10, 41 + attempt), output={"applied": 1}, error="TimeoutError: x"
            )
            log.finish(pk, ("failed", "success", "partial")[(i + attempt) % 3], at(10, 50 + attempt))

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(work, range(48)))
    kept = _rollup_rows(store)
    summary = store.organization_analytics("acme", SPAN).summary
    assert summary.runs == 16  # each run once, under its last status
    store.rebuild_rollups()
    assert _rollup_rows(store)["analytics_runs"] == kept["analytics_runs"]
    assert _rollup_rows(store)["analytics_steps"] == kept["analytics_steps"]
    assert _rollup_rows(store)["analytics_durations"] == kept["analytics_durations"]
    store.close()


def test_notification_deliveries_per_channel_follow_their_status(store: RuleStore) -> None:
    from rule_compiler.store import notifications as n

    def delivery(key: str, channel: str, org: str = "acme") -> n.NotificationDelivery:
        return n.NotificationDelivery(
            idempotency_key=key * 64,
            organization=org,
            rule_id=f"{org}/r1",
            action_id="tell",
            occurrence_id="run",
            row_key="[1]",
            channel=channel,
            recipient="ann",
        )

    engine, message = store.engine, {"subject": "s", "body": "b"}
    assert n.start_delivery(engine, delivery("a", "email"), now=at(10)) == 1
    n.finish_delivery(engine, "a" * 64, status="sent", now=at(10, 1))
    assert n.start_delivery(engine, delivery("b", "email"), now=at(10)) == 1
    n.finish_delivery(engine, "b" * 64, status="failed", now=at(10, 1), error="SMTPException: no")
    queued = n.start_delivery(
        engine, delivery("c", "email"), now=at(11), status="deferred", message=message, deliver_after=at(12)
    )
    assert queued == 0 and n.claim_due(engine, "c" * 64, at(12)) == 1  # quiet hours ended
    n.finish_delivery(engine, "c" * 64, status="sent", now=at(12, 1))
    assert n.start_delivery(engine, delivery("d", "slack"), now=at(11), status="muted", message=message) == 0
    digest = n.start_delivery(
        engine, delivery("e", "in_app"), now=at(11), status="digest", message=message, deliver_after=at(20)
    )
    assert digest == 0 and n.mark_digested(engine, ["e" * 64], at(20)) == 1
    assert n.start_delivery(engine, delivery("f", "email", "other"), now=at(10)) == 1

    found = store.notification_analytics("acme", SPAN)
    channels = {c.channel: c for c in found.channels}
    assert set(channels) == {"email", "slack", "in_app"}
    email = channels["email"]
    assert (email.by_status, email.attempts, email.deferred, email.digest) == (
        {"failed": 1, "sent": 2},
        3,
        1,
        0,
    )
    assert channels["slack"].by_status == {"muted": 1} and channels["in_app"].by_status == {"digested": 1}
    assert channels["in_app"].digest == 1 and channels["in_app"].deferred == 0
    hourly = store.notification_analytics("acme", TimeRange.of(DAY, at(24), "hour"))
    assert [(p.start, p.summary.channel, p.summary.deliveries) for p in hourly.series] == [
        (at(10), "email", 2),
        (at(11), "email", 1),
        (at(11), "in_app", 1),
        (at(11), "slack", 1),
    ]
    store.rebuild_rollups()
    assert store.notification_analytics("acme", SPAN) == found
