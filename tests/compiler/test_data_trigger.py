"""Data triggers: the compiled DAG starts with the sensor, and validation guards its query and check."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from rule_compiler.catalog import Catalog
from rule_compiler.compiler import DATA_SENSOR_TASK, EVALUATE_TASK, OUTCOME_TASK
from rule_compiler.errors import RuleValidationError
from rule_compiler.registration import Compiled, compile_document
from rule_compiler.sql_check import check_read_only
from tests.conftest import DEMO_CATALOG

RULE: dict[str, Any] = {
    "kind": "rule",
    "name": "failed-payments",
    "organization": "acme",
    "trigger": {
        "type": "data",
        "connection": "app_db",
        "sql": "SELECT count(*) FROM orders WHERE status = 'payment_failed' "
        "AND updated_at > :data_interval_start",
        "check": {"operator": "gt", "value": 10},
        "schedule": "*/15 * * * *",
        "timezone": "Europe/Berlin",
        "poke_interval": 30,
        "timeout": 900,
    },
    "actions": [
        {"id": "page", "type": "call_webhook", "connection": "crm_api", "path": "/hooks/page"},
        {
            "id": "note",
            "type": "call_webhook",
            "connection": "crm_api",
            "path": "/hooks/note",
            "depends_on": ["page"],
        },
    ],
}


def _catalog() -> Catalog:
    return Catalog.model_validate(yaml.safe_load(DEMO_CATALOG.read_text()))


def _compile(rule: dict[str, Any]) -> Compiled:
    compiled = compile_document(rule, _catalog())
    assert isinstance(compiled, Compiled)
    return compiled


def _issues(**trigger: Any) -> list[tuple[str, str]]:
    rule = copy.deepcopy(RULE)
    rule["trigger"].update(trigger)
    with pytest.raises(RuleValidationError) as caught:
        compile_document(rule, _catalog())
    return [(issue.path, issue.message) for issue in caught.value.issues]


def test_the_sensor_is_the_first_task_and_gates_the_conditions() -> None:
    spec = _compile(RULE).spec
    assert [t.task_id for t in spec.tasks] == [DATA_SENSOR_TASK, EVALUATE_TASK, "page", "note", OUTCOME_TASK]
    sensor = spec.task(DATA_SENSOR_TASK)
    assert sensor.kind == "data_sensor" and sensor.upstream == ()
    assert sensor.params == {
        "rule_id": "acme/failed-payments",
        "connection": "app_db",
        "sql": RULE["trigger"]["sql"],
        "check": {"operator": "gt", "value": 10},
        "poke_interval": 30,
        "timeout": 900,
    }
    assert spec.task(EVALUATE_TASK).upstream == (DATA_SENSOR_TASK,)
    assert spec.task("page").upstream == (EVALUATE_TASK,) and spec.task("note").upstream == ("page",)
    assert (spec.schedule.kind, spec.schedule.cron, spec.schedule.timezone) == (
        "data",
        "*/15 * * * *",
        "Europe/Berlin",
    )


def test_returns_rows_has_no_value_in_the_params() -> None:
    spec = _compile({**RULE, "trigger": {**RULE["trigger"], "check": {"operator": "returns_rows"}}}).spec
    assert spec.task(DATA_SENSOR_TASK).params["check"] == {"operator": "returns_rows"}


def test_other_triggers_have_no_sensor() -> None:
    manual = {**RULE, "trigger": {"type": "manual"}}
    spec = _compile(manual).spec
    assert DATA_SENSOR_TASK not in {t.task_id for t in spec.tasks}
    assert spec.task(EVALUATE_TASK).upstream == ()


@pytest.mark.parametrize(
    "sql",
    [
        # a CTE of that name exists, but only inside the subquery: EXISTS reads the real table
        "SELECT count(*) FROM orders WHERE id IN (WITH customers_secret AS (SELECT 1) "
        "SELECT * FROM customers_secret) AND EXISTS (SELECT 1 FROM customers_secret)",
        # a CTE cannot see a later sibling (no RECURSIVE): it reads the real table
        "WITH a AS (SELECT * FROM customers_secret), customers_secret AS (SELECT 1) SELECT count(*) FROM a",
        "SELECT count(*) FROM (WITH customers_secret AS (SELECT 1) SELECT * FROM customers_secret) x, "
        "customers_secret",
    ],
)
def test_a_cte_name_does_not_hide_a_real_table_from_the_catalog_check(sql: str) -> None:
    assert "customers_secret" in check_read_only(sql).tables
    issues = _issues(sql=sql)
    assert any(
        path == "trigger.sql" and "'customers_secret', not in the catalog" in m for path, m in issues
    ), issues


def test_ctes_in_scope_are_not_tables() -> None:
    sql = (
        "WITH n(x) AS (SELECT 1), "
        "failed AS (SELECT * FROM orders WHERE status = 'payment_failed') "
        "SELECT count(*) FROM failed, n"
    )
    assert check_read_only(sql).tables == ("orders",)
    _compile({**RULE, "trigger": {**RULE["trigger"], "sql": sql}})


def test_a_recursive_cte_is_refused_it_generates_rows_without_end() -> None:
    sql = "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) SELECT count(*) FROM n"
    assert ("trigger.sql", "WITH RECURSIVE is not allowed") in [
        (path, message.split(" (")[0]) for path, message in _issues(sql=sql)
    ]


@pytest.mark.parametrize(
    ("check", "words"),
    [
        ({"operator": "gt", "value": "ten"}, "must be a number"),
        ({"operator": "lte", "value": True}, "must be a number"),
        ({"operator": "equals"}, "needs a value"),
        ({"operator": "returns_rows", "value": 1}, "takes no value"),
    ],
)
def test_the_check_value_must_fit_its_operator(check: dict[str, Any], words: str) -> None:
    issues = _issues(check=check)
    assert any(path == "trigger.check.value" and words in message for path, message in issues), issues


def test_an_action_may_not_take_the_sensors_task_id() -> None:
    rule = copy.deepcopy(RULE)
    rule["actions"][0]["id"] = DATA_SENSOR_TASK
    rule["actions"][1]["depends_on"] = [DATA_SENSOR_TASK]
    with pytest.raises(RuleValidationError) as caught:
        compile_document(rule, _catalog())
    assert any(i.path == "actions[0].id" and "reserved" in i.message for i in caught.value.issues)
