"""Webhook analytics (rule_compiler/store/webhook_analytics.py) on SQLite and Postgres: attempts recorded
the way the webhook task records them, at times the test chooses, against numbers computed by hand."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from rule_compiler.runtime.webhook_requests import Delivery, finish_attempt, start_attempt
from rule_compiler.store import RuleStore
from rule_compiler.store.analytics import TimeRange
from rule_compiler.store.analytics_tables import analytics_webhooks
from rule_compiler.store.rollups import duration_bin

DAY = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)


def at(hours: float, seconds: float = 0) -> dt.datetime:
    return DAY + dt.timedelta(hours=hours, seconds=seconds)


def attempt(
    store: RuleStore, key: str, start: dt.datetime, seconds: float, outcome: str, *, rule: str = "acme/push",
    action: str = "hook",
) -> None:  # fmt: skip
    delivery = Delivery(key, rule, action, "occurrence", None)
    assert start_attempt(store.engine, delivery, start) is not None
    finish_attempt(store.engine, key, status=outcome, now=start + dt.timedelta(seconds=seconds))


@pytest.fixture
def log(store: RuleStore) -> RuleStore:
    attempt(store, "k1", at(10), 0.1, "delivered")  # 100 ms
    attempt(store, "k2", at(10, 300), 2, "retrying")  # 2 s, then 500 ms
    attempt(store, "k2", at(10, 600), 0.5, "delivered")
    attempt(store, "k3", at(11), 1, "retrying")  # 1 s, then 3 s and given up
    attempt(store, "k3", at(11, 1800), 3, "failed")
    attempt(store, "k4", at(10), 0.2, "delivered", rule="globex/push")  # another organization
    attempt(store, "k5", at(33), 0.2, "delivered", action="notify-crm")  # the next day, another action
    return store


def test_the_organization_and_each_action_match_the_hand_computed_numbers(log: RuleStore) -> None:
    found = log.webhook_analytics("acme", TimeRange.of(DAY, DAY + dt.timedelta(days=2), "day"))
    total = found.summary
    assert (total.attempts, total.delivered, total.retrying, total.failed) == (6, 3, 2, 1)
    assert total.success_rate == 3 / 4
    hook = found.actions[("push", "hook")]
    assert (hook.delivered, hook.retrying, hook.failed, hook.success_rate) == (2, 2, 1, 2 / 3)
    # latencies 100, 2000, 500, 1000, 3000 ms: the median is 1000 ms, within its bin
    assert hook.p50_ms is not None and duration_bin(hook.p50_ms) == duration_bin(1000)
    crm = found.actions[("push", "notify-crm")]
    assert (crm.attempts, crm.success_rate) == (1, 1.0)
    assert [(p.start, p.summary.attempts) for p in found.series] == [
        (DAY, 5),
        (DAY + dt.timedelta(days=1), 1),
    ]


def test_the_hourly_series_adds_up_to_the_daily_one(log: RuleStore) -> None:
    found = log.webhook_analytics("acme", TimeRange.of(DAY, DAY + dt.timedelta(days=2), "hour"))
    by_hour = {p.start: (p.summary.delivered, p.summary.retrying, p.summary.failed) for p in found.series}
    assert by_hour == {at(10): (2, 1, 0), at(11): (0, 1, 1), at(33): (1, 0, 0)}
    assert found.summary.attempts == 6


def test_a_record_without_an_attempt_in_flight_counts_nothing(store: RuleStore) -> None:
    attempt(store, "k1", at(10), 0.1, "delivered")
    finish_attempt(store.engine, "k1", status="delivered", now=at(10, 5))  # recorded twice
    finish_attempt(store.engine, "unknown", status="failed", now=at(10, 5))
    with store.engine.connect() as conn:
        counted = conn.execute(
            sa.select(sa.func.sum(analytics_webhooks.c.attempts)).where(analytics_webhooks.c.grain == "day")
        ).scalar_one()
    assert counted == 1
