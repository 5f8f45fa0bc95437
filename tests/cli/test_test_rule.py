"""`rule-compiler test-rule` (the st2-rule-tester analogue) without Airflow: verdicts, traces, exit codes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from rule_compiler.catalog import Catalog
from rule_compiler.cli import main
from rule_compiler.definitions import RuleDefinition
from rule_compiler.rule_tester import (
    RelatedRequest,
    RelatedRows,
    RuleTestError,
    format_text,
    load_event,
    test_rule,
)
from tests.conftest import DEMO_CATALOG

NOW = "2026-11-20T12:00:00Z"

EVENT_RULE: dict[str, Any] = {
    "kind": "rule",
    "name": "vip-paid",
    "organization": "acme",
    "trigger": {
        "type": "event",
        "connection": "app_db",
        "table": "orders",
        "events": ["created", "updated"],
        "fields": ["status", "total"],
    },
    "conditions": {
        "all": [
            {"field": "total", "operator": "gte", "value": 1000},
            {"field": "customer__tier", "operator": "equals", "value": "vip"},
            {
                "any": [
                    {"field": "status", "operator": "changed_to", "value": "paid"},
                    {"not": {"field": "priority", "operator": "equals", "value": "high"}},
                ]
            },
        ]
    },
    "actions": [
        {
            "id": "flag",
            "type": "update_record",
            "connection": "app_db",
            "table": "orders",
            "values": {"priority": "high"},
        }
    ],
}

PAID_UPDATE: dict[str, Any] = {
    "table": "orders",
    "operation": "updated",
    "new": {"id": 5, "customer_id": 2, "status": "paid", "total": 1500, "priority": "high"},
    "old": {"id": 5, "customer_id": 2, "status": "pending", "total": 1500, "priority": "high"},
}

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Run:
    """Write the rule and event, run `test-rule` with the demo catalog: (exit code, stdout, stderr)."""

    def go(
        rule: dict[str, Any] | str = EVENT_RULE, event: dict[str, Any] | str = PAID_UPDATE, *extra: str
    ) -> tuple[int, str, str]:
        rule_path, event_path = tmp_path / "rule.yaml", tmp_path / "event.json"
        rule_path.write_text(rule if isinstance(rule, str) else yaml.safe_dump(rule))
        event_path.write_text(event if isinstance(event, str) else json.dumps(event))
        args = ["test-rule", str(rule_path), "--event", str(event_path), "--catalog", str(DEMO_CATALOG)]
        code = main([*args, "--now", NOW, *extra])
        out, err = capsys.readouterr()
        return code, out, err

    return go


def _with_new(**values: Any) -> dict[str, Any]:
    return {**PAID_UPDATE, "new": {**PAID_UPDATE["new"], **values}}


def test_match_exits_0_and_prints_the_tree(run: Run) -> None:
    code, out, _ = run(EVENT_RULE, _with_new(customer__tier="vip"))
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "rule acme/vip-paid, event updated on orders (changed: status)"
    assert "  ✓ all" in lines
    assert any(line.startswith("    ✓ total gte 1000  [seen: 1500]") for line in lines)
    assert any("✓ status changed_to 'paid'  [seen: 'paid']" in line for line in lines)
    # `any` stopped at its first true member: the `not` group was never evaluated
    assert "      - not (skipped)" in lines
    assert any("- priority equals 'high'  (skipped" in line for line in lines)
    assert lines[-1] == "MATCHED: the conditions hold"


def test_no_match_exits_1_with_the_failing_condition(run: Run) -> None:
    code, out, _ = run(EVENT_RULE, _with_new(total=900, customer__tier="vip"))
    assert code == 1
    assert "✗ total gte 1000  [seen: 900]  'total' is 900: gte 1000 is false" in out
    assert out.rstrip().endswith("NO MATCH: the conditions do not hold")


def test_json_output(run: Run) -> None:
    code, out, _ = run(EVENT_RULE, _with_new(customer__tier="vip"), "--format", "json")
    report = json.loads(out)
    assert code == 0
    assert report["matched"] is True and report["triggered"] is True
    trace = report["trace"]
    assert trace["kind"] == "all" and trace["result"] is True
    first = trace["children"][0]
    assert (first["field"], first["operator"], first["expected"], first["actual"]) == (
        "total",
        "gte",
        1000,
        1500,
    )
    assert trace["children"][2]["children"][1]["skipped"] is True
    assert report["record"]["customer__tier"] == "vip"


def test_changed_to_reads_old_and_new(run: Run) -> None:
    rule = {
        **EVENT_RULE,
        "conditions": {"field": "status", "operator": "changed_to", "value": "paid"},
    }
    assert run(rule, PAID_UPDATE)[0] == 0
    # the status did not change (already paid): changed_to is false even though new.status is paid
    unchanged = {**PAID_UPDATE, "old": {**PAID_UPDATE["old"], "status": "paid", "total": 1}}
    code, out, _ = run(rule, unchanged)
    assert code == 1 and "'status' did not change" in out
    from_rule = {**rule, "conditions": {"field": "status", "operator": "changed_from", "value": "pending"}}
    code, out, _ = run(from_rule, PAID_UPDATE, "--format", "json")
    assert code == 0 and json.loads(out)["trace"]["actual"] == "pending"


def test_changed_fields_given_explicitly(run: Run) -> None:
    rule = {**EVENT_RULE, "conditions": {"field": "total", "operator": "changed"}}
    event = {**PAID_UPDATE, "old": None, "changed_fields": ["total"]}
    assert run(rule, event)[0] == 0


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (
            {**PAID_UPDATE, "table": "customers"},
            "the rule watches table 'orders'; the event is for 'customers'",
        ),
        (
            {**PAID_UPDATE, "operation": "deleted"},
            "the rule fires on created, updated; the event is 'deleted'",
        ),
        (
            {**PAID_UPDATE, "new": {**PAID_UPDATE["new"], "status": "pending"}},
            "the rule fires only when one of status, total changed; changed: nothing",
        ),
        ({**PAID_UPDATE, "connection": "warehouse"}, "the rule watches connection 'app_db'"),
    ],
)
def test_event_that_does_not_fit_the_trigger_is_not_triggered(
    run: Run, event: dict[str, Any], reason: str
) -> None:
    code, out, _ = run(EVENT_RULE, event)
    assert code == 1
    assert "not triggered: " + reason in out
    code, out, _ = run(EVENT_RULE, event, "--format", "json")
    report = json.loads(out)
    assert code == 1 and report["matched"] is False and report["triggered"] is False
    assert report["trace"] is None and report["reason"].startswith("not triggered: ")


def test_fields_filter_does_not_apply_to_created_events(run: Run) -> None:
    event = {
        "table": "orders",
        "operation": "created",
        "new": {**PAID_UPDATE["new"], "customer__tier": "vip"},
    }
    code, out, _ = run(EVENT_RULE, event)
    # triggered; `changed_to` is false on a created event (nothing changed), the `not` member decides
    assert "not triggered" not in out
    assert code == 1 and "no change information" in out


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ("{not json", "the event is not valid JSON"),
        ("[1, 2]", "an event is an object"),
        ({"table": "orders", "operation": "upserted", "new": {}}, "operation: input should be 'created'"),
        ({"table": "orders", "operation": "created", "new": 5}, "new: must be a mapping"),
        ({"table": "orders", "operation": "created", "new": {}, "extra": 1}, "unknown key 'extra'"),
        ({"operation": "created", "new": {}}, "table:"),
    ],
)
def test_bad_event_exits_2(run: Run, event: dict[str, Any] | str, message: str) -> None:
    code, out, err = run(EVENT_RULE, event)
    assert code == 2, out
    assert message in err and "event" in err


def test_event_without_a_row_exits_2(run: Run) -> None:
    code, _, err = run(EVENT_RULE, {"table": "orders", "operation": "updated"})
    assert code == 2 and "no row to test" in err


def test_invalid_rule_exits_2_with_json_paths(run: Run) -> None:
    bad = {
        **EVENT_RULE,
        "conditions": {"all": [{"field": "customer__shoe_size", "operator": "equals", "value": 1}]},
    }
    code, out, err = run(bad)
    assert code == 2
    assert "conditions.all[0].field" in out and "shoe_size" in out
    assert "not a valid rule" in err
    code, out, _ = run(bad, PAID_UPDATE, "--format", "json")
    report = json.loads(out)
    assert code == 2 and report["valid"] is False
    assert report["errors"][0]["path"] == "conditions.all[0].field"


def test_unreadable_rule_exits_2(run: Run) -> None:
    code, _, err = run("kind: rule\nname: [unclosed")
    assert code == 2 and "invalid YAML" in err


def test_fk_path_without_connection_is_null_and_noted(run: Run) -> None:
    code, out, _ = run(EVENT_RULE, PAID_UPDATE)
    assert code == 1
    assert "✗ customer__tier equals 'vip'  [seen: NULL]" in out
    assert "note: customer__tier: not in the event's row, so it is NULL (pass --connection" in out


def test_connection_without_airflow_is_a_clear_error(run: Run) -> None:
    code, _, err = run(EVENT_RULE, PAID_UPDATE, "--connection", "app_db")
    assert code == 2
    assert "use the `rule-compiler` command installed with the plugin" in err


def test_target_rule_tests_new_as_a_row(run: Run) -> None:
    rule = yaml.safe_load((DEMO_CATALOG.parents[1] / "rules" / "flag-big-paid-orders.yaml").read_text())
    event = {"table": "orders", "operation": "created", "new": {"id": 1, "status": "paid", "total": 1250.5}}
    code, out, _ = run(rule, event)
    assert code == 0 and "tested as one row of its target 'orders'" in out
    code, out, _ = run(rule, {**event, "table": "customers"})
    assert code == 1 and "not triggered: the rule's target is table 'orders'" in out


def test_bad_now_exits_2(run: Run) -> None:
    code, _, err = run(EVENT_RULE, PAID_UPDATE, "--now", "yesterday")
    assert code == 2 and "--now" in err


# -- the pure API --------------------------------------------------------------------------------


def _catalog() -> Catalog:
    return Catalog.model_validate(yaml.safe_load(DEMO_CATALOG.read_text()))


def test_related_reader_fills_paths_and_explains_missing_rows() -> None:
    rule = RuleDefinition.model_validate(EVENT_RULE)
    requests: list[RelatedRequest] = []

    def related(request: RelatedRequest) -> RelatedRows:
        requests.append(request)
        return RelatedRows({"customer__tier": "vip"}, [])

    result = test_rule(rule, load_event(PAID_UPDATE), catalog=_catalog(), related=related, now=_now())
    assert result.matched and result.record["customer__tier"] == "vip"
    assert requests[0].paths == ("customer__tier",) and requests[0].table == "orders"
    assert "customer__tier: read from the database: 'vip'" in result.notes

    def nothing(request: RelatedRequest) -> RelatedRows:
        return RelatedRows({}, ["customer__tier: no customers row with id = 2; NULL"])

    result = test_rule(rule, load_event(PAID_UPDATE), catalog=_catalog(), related=nothing, now=_now())
    assert not result.matched and "customer__tier: no customers row with id = 2; NULL" in result.notes
    assert "MATCH" in format_text(result)


def test_data_rule_cannot_be_tested() -> None:
    rule = RuleDefinition.model_validate(
        {
            **EVENT_RULE,
            "conditions": None,
            "trigger": {
                "type": "data",
                "connection": "app_db",
                "sql": "select 1",
                "check": {"operator": "returns_rows"},
                "schedule": "0 * * * *",
            },
        }
    )
    with pytest.raises(RuleTestError, match="data trigger"):
        test_rule(rule, load_event(PAID_UPDATE), catalog=_catalog(), now=_now())


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime(2026, 11, 20, 12, tzinfo=UTC)
