"""Schedules: next run times in a time zone, the shortest gap, and the admin's minimum interval."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import yaml

from rule_compiler.catalog import Catalog
from rule_compiler.errors import RuleValidationError
from rule_compiler.schedules import MIN_INTERVAL_ENV, describe, minimum_interval, next_runs, shortest_interval
from rule_compiler.validation import validate_definition
from tests.conftest import DEMO_CATALOG


@pytest.mark.parametrize(
    ("cron", "gap"),
    [
        ("* * * * *", dt.timedelta(minutes=1)),
        ("*/5 * * * *", dt.timedelta(minutes=5)),
        ("*/20 9-17 * * 1-5", dt.timedelta(minutes=20)),
        ("0,30 23 * * *", dt.timedelta(minutes=30)),
        ("55 23,0 * * *", dt.timedelta(hours=1)),  # 23:55 → 00:55 of the next day
        ("0 9 * * 1-5", dt.timedelta(days=1)),
        ("59 23 * * 1,2", dt.timedelta(days=1)),
        ("0 0,23 * * 1", dt.timedelta(hours=23)),  # Monday 23:00 is not followed by Tuesday 00:00
        ("0 0 1 * *", dt.timedelta(days=28)),
        ("0 0 30,31 * *", dt.timedelta(days=1)),
    ],
)
def test_shortest_interval(cron: str, gap: dt.timedelta) -> None:
    assert shortest_interval(cron) == gap


def test_next_runs_follow_wall_clock_time_in_the_zone_across_dst() -> None:
    runs = next_runs("0 9 * * *", "Europe/Berlin", after=dt.datetime(2026, 3, 27, 12, tzinfo=dt.UTC), count=3)
    assert [r.isoformat() for r in runs] == [
        "2026-03-28T09:00:00+01:00",
        "2026-03-29T09:00:00+02:00",  # summer time began that night; still 09:00 local
        "2026-03-30T09:00:00+02:00",
    ]
    assert (
        len(next_runs("* * * * *", "UTC", after=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), count=10_000)) == 100
    )


def test_minimum_interval_from_the_environment() -> None:
    assert minimum_interval("") == dt.timedelta(minutes=1)
    assert minimum_interval("900") == dt.timedelta(minutes=15)
    assert minimum_interval("5") == dt.timedelta(minutes=1)  # cron cannot go below a minute anyway
    with pytest.raises(ValueError, match=MIN_INTERVAL_ENV):
        minimum_interval("15m")
    assert [describe(dt.timedelta(seconds=s)) for s in (300, 7_200, 86_400, 172_800, 90)] == [
        "5 min",
        "2 h",
        "1 day",
        "2 days",
        "90 s",
    ]


def _rule(trigger: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": "rule",
        "name": "often",
        "organization": "acme",
        "trigger": trigger,
        "actions": [{"id": "ping", "type": "call_webhook", "connection": "crm_api", "path": "/x"}],
    }


def _errors(data: dict[str, Any]) -> list[tuple[str, str]]:
    catalog = Catalog.model_validate(yaml.safe_load(DEMO_CATALOG.read_text()))
    with pytest.raises(RuleValidationError) as caught:
        validate_definition(data, catalog)
    return [(issue.path, issue.message) for issue in caught.value.issues]


def test_a_schedule_more_frequent_than_the_admin_minimum_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    catalog = Catalog.model_validate(yaml.safe_load(DEMO_CATALOG.read_text()))
    every_five = _rule({"type": "schedule", "cron": "*/5 * * * *"})
    validate_definition(every_five, catalog)  # the default minimum is one minute
    monkeypatch.setenv(MIN_INTERVAL_ENV, "900")
    [(path, message)] = _errors(every_five)
    assert path == "trigger.cron"
    assert "every 5 min" in message and "15 min" in message and MIN_INTERVAL_ENV in message
    data_trigger = _rule(
        {
            "type": "data",
            "connection": "app_db",
            "sql": "SELECT count(*) FROM orders",
            "check": {"operator": "gt", "value": 0},
            "schedule": "*/10 * * * *",
        }
    )
    assert [path for path, _ in _errors(data_trigger)] == ["trigger.schedule"]
    validate_definition(_rule({"type": "schedule", "cron": "0 * * * *"}), catalog)
