"""Failure-rate alerts (ADR 0014) on SQLite and on the real Postgres: runs written the way the tasks
write them (so the analytics rollups hold them), then the ``check_failure_rates`` task's function at
chosen times. The owner (an in-app user name) finds each alert in the inbox, once per window."""

from __future__ import annotations

from pathlib import Path

import pytest
from rule_engine.failure_rate_alerts import check_failure_rates

from rule_compiler.settings import FAILURE_ALERTS_ENV
from rule_compiler.store import RuleStore
from rule_compiler.store.failure_alerts import alerted_windows
from rule_compiler.store.inbox import list_inbox
from tests.airflow.conftest import apply_rules
from tests.analytics_log import Log, at
from tests.conftest import ROOT

pytestmark = pytest.mark.airflow
RULE = ROOT / "include" / "rules" / "flag-big-paid-orders.yaml"
ALERTS = {"failure_rate": 0.5, "window": "1h", "min_runs": 4}


@pytest.fixture(params=["sqlite", "postgres"])
def any_store(request: pytest.FixtureRequest) -> RuleStore:
    store: RuleStore = request.getfixturevalue("store" if request.param == "sqlite" else "pg_store")
    apply_rules(store, RULE, overrides={"owner": "olga", "alerts": ALERTS})
    apply_rules(store, RULE, overrides={"name": "by-default", "owner": "bob"})
    apply_rules(store, RULE, overrides={"name": "nobody-owns", "owner": None})
    return store


def _runs(store: RuleStore, hour: float, statuses: list[str], name: str = "flag-big-paid-orders") -> None:
    log = Log(store)
    for i, status in enumerate(statuses):
        pk = log.start(f"{name}-{hour}-{i}", at(hour, i), name=name)
        log.evaluate(pk, 3, 0 if status == "no_match" else 2, at(hour, i + 0.5))
        if status != "no_match":
            log.finish(pk, status, at(hour, i + 0.9))


def _inbox(store: RuleStore, recipient: str) -> list[str]:
    return sorted(m.subject for m in list_inbox(store.engine, organization="acme", recipient=recipient))


def test_a_window_that_crosses_the_threshold_alerts_its_owner_once(
    any_store: RuleStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = any_store
    monkeypatch.delenv(FAILURE_ALERTS_ENV, raising=False)
    _runs(store, 10, ["failed", "failed", "failed", "success", "no_match", "no_match"])
    _runs(store, 10, ["failed"] * 6, name="nobody-owns")  # no owner: never alerted
    assert check_failure_rates(store, at(10.5)) == {"alerted": 1, "failed": 0}
    assert check_failure_rates(store, at(10.75)) == {"alerted": 0, "failed": 0}  # once per window
    assert check_failure_rates(store, at(11.1)) == {"alerted": 0, "failed": 0}  # the window before, too
    assert _inbox(store, "olga") == ["Automation acme/flag-big-paid-orders failed 3 of 4 runs"]
    [window] = alerted_windows(store.engine)
    assert (window["name"], window["window_start"], window["runs"], window["failed"]) == (
        "flag-big-paid-orders",
        at(10),
        4,
        3,
    )

    _runs(store, 11, ["failed", "failed", "success"])  # 3 runs: below min_runs
    assert check_failure_rates(store, at(11.5))["alerted"] == 0
    _runs(store, 11.2, ["success", "success"])  # 5 runs, 2 failed: below the threshold
    assert check_failure_rates(store, at(11.9))["alerted"] == 0

    _runs(store, 12, ["failed", "partial", "failed", "success"])  # a new window: alerts again
    assert check_failure_rates(store, at(12.2))["alerted"] == 1
    assert _inbox(store, "olga") == [
        "Automation acme/flag-big-paid-orders failed 2 of 4 runs",
        "Automation acme/flag-big-paid-orders failed 3 of 4 runs",
    ]
    assert _inbox(store, "bob") == []  # no alert of its own, no deployment default


def test_the_deployment_default_applies_to_definitions_without_alerts(
    any_store: RuleStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = any_store
    monkeypatch.setenv(FAILURE_ALERTS_ENV, "failure_rate=1, window=2h, min_runs=2")
    _runs(store, 10, ["failed"], name="by-default")
    _runs(store, 11, ["failed"], name="by-default")  # the same 2-hour window (10:00-12:00)
    _runs(store, 10, ["failed", "failed", "failed", "success"])  # its own alert: 1h, 50 %
    assert check_failure_rates(store, at(11.5)) == {"alerted": 2, "failed": 0}
    assert _inbox(store, "bob") == ["Automation acme/by-default failed 2 of 2 runs"]
    assert [(w["name"], w["window_hours"]) for w in alerted_windows(store.engine)] == [
        ("by-default", 2),
        ("flag-big-paid-orders", 1),
    ]
    monkeypatch.setenv(FAILURE_ALERTS_ENV, "failure_rate=2")
    with pytest.raises(ValueError, match=FAILURE_ALERTS_ENV):
        check_failure_rates(store, at(11.5))


def test_the_window_is_part_of_the_definition_format(tmp_path: Path, store: RuleStore) -> None:
    from rule_compiler.errors import RuleValidationError

    with pytest.raises(RuleValidationError, match="a window is 1h to 7d"):
        apply_rules(store, RULE, overrides={"alerts": {"failure_rate": 0.5, "window": "8d"}})
    with pytest.raises(RuleValidationError, match=r"alerts\.failure_rate"):
        apply_rules(store, RULE, overrides={"alerts": {"failure_rate": 0}})
