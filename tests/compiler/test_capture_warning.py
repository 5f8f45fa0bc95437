"""An event rule on a table whose catalog entry says change capture is not installed is still valid,
with a warning naming the command to run; the catalog's new ``capture_installed`` flag is optional."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from rule_compiler.canonical import content_hash
from rule_compiler.catalog import Catalog
from rule_compiler.registration import Compiled, compile_document
from rule_compiler.validation import validate_document
from tests.conftest import DEMO_CATALOG


def _catalog(capture: bool | None) -> Catalog:
    raw: dict[str, Any] = yaml.safe_load(DEMO_CATALOG.read_text())
    if capture is not None:
        raw["connections"]["app_db"]["tables"]["orders"]["capture_installed"] = capture
    return Catalog.model_validate(raw)


def _rule(trigger: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": "rule",
        "name": "watch-orders",
        "organization": "acme",
        "trigger": trigger,
        "conditions": {"all": [{"field": "total", "operator": "gte", "value": 1000}]},
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


EVENT = {"type": "event", "connection": "app_db", "table": "orders", "events": ["created"]}


def test_capture_not_installed_warns_with_the_command_and_stays_valid() -> None:
    validated = validate_document(_rule(EVENT), _catalog(False))
    [warning] = validated.warnings
    assert warning.path == "trigger.table" and warning.code == "capture_not_installed"
    assert "change capture is not installed on app_db.orders, so this rule will never fire" in warning.message
    assert "`rule-compiler events install --connection app_db --table orders`" in warning.message
    compiled = compile_document(_rule(EVENT), _catalog(False))
    assert isinstance(compiled, Compiled) and compiled.warnings == validated.warnings
    # the warning does not change what is compiled
    assert compiled.spec_hash == compile_document(_rule(EVENT), _catalog(True)).spec_hash


@pytest.mark.parametrize("capture", [True, None])
def test_capture_installed_or_unknown_does_not_warn(capture: bool | None) -> None:
    assert validate_document(_rule(EVENT), _catalog(capture)).warnings == ()


def test_only_event_rules_on_that_table_warn() -> None:
    target = {"type": "schedule", "cron": "0 * * * *", "target": {"connection": "app_db", "table": "orders"}}
    assert validate_document(_rule(target), _catalog(False)).warnings == ()
    other = {**EVENT, "table": "customers"}
    rule = _rule(other)
    rule["conditions"] = {"all": [{"field": "tier", "operator": "equals", "value": "vip"}]}
    rule["actions"][0]["table"] = "customers"
    rule["actions"][0]["values"] = {"tier": "gold"}
    assert validate_document(rule, _catalog(False)).warnings == ()


def test_catalogs_without_the_flag_load_and_dump_as_before() -> None:
    raw: dict[str, Any] = yaml.safe_load(DEMO_CATALOG.read_text())
    dumped = Catalog.model_validate(raw).model_dump(mode="json")
    assert "capture_installed" not in dumped["connections"]["app_db"]["tables"]["orders"]
    # so a stored catalog's hash (and version) does not change by re-applying it
    assert content_hash(Catalog.model_validate(dumped).model_dump(mode="json")) == content_hash(dumped)
    flagged = _catalog(False).model_dump(mode="json")
    assert flagged["connections"]["app_db"]["tables"]["orders"]["capture_installed"] is False
    assert Catalog.model_validate(flagged) == _catalog(False)
