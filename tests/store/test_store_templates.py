"""Condition templates in the store: kept as definitions of their own kind, never loadable as DAGs."""

from __future__ import annotations

from pathlib import Path

import yaml

from rule_compiler.catalog import Catalog
from rule_compiler.loading import read_definition_file
from rule_compiler.registration import CompiledTemplate, compile_document, register
from rule_compiler.store import RuleStore
from rule_compiler.validation import validate_definition
from tests.conftest import DEMO_CATALOG, ROOT

TEMPLATE = ROOT / "include" / "templates" / "big-order.yaml"
RULE = ROOT / "include" / "rules-using-templates" / "note-big-vip-orders.yaml"


def _store_both(store: RuleStore) -> None:
    template = compile_document(read_definition_file(TEMPLATE), None)
    assert isinstance(template, CompiledTemplate)
    assert register(store, template, actor="t").status == "created"
    catalog = Catalog.model_validate(yaml.safe_load(DEMO_CATALOG.read_text()))
    templates = {"big-order": template.definition}
    register(store, compile_document(read_definition_file(RULE), catalog, templates=templates), actor="t")


def test_templates_are_stored_but_never_loadable(store: RuleStore) -> None:
    _store_both(store)
    stored = store.get(organization="acme", kind="condition_template", name="big-order")
    assert stored.dag_id == "condition_template__acme__big-order"
    assert validate_definition(stored.source, None).name == "big-order"
    assert [row.dag_id for row in store.loadable_specs()] == ["rule__acme__note-big-vip-orders"]
    assert store.loadable_specs("condition_template__acme__big-order") == []


def test_sqlite_fast_path_skips_templates_too(tmp_path: Path) -> None:
    store = RuleStore(f"sqlite:///{tmp_path / 'fast.db'}")
    store.upgrade()
    _store_both(store)
    fresh = RuleStore(f"sqlite:///{tmp_path / 'fast.db'}")  # no engine yet: the raw sqlite3 path
    assert fresh._sqlite_file() is not None
    assert [row.dag_id for row in fresh.loadable_specs()] == ["rule__acme__note-big-vip-orders"]
    assert fresh.loadable_specs("condition_template__acme__big-order") == []


def test_definitions_of_kind(store: RuleStore) -> None:
    _store_both(store)
    templates = store.definitions_of_kind("acme", "condition_template")
    assert [t.name for t in templates] == ["big-order"]
    rules = store.definitions_of_kind("acme", "rule")
    assert [r.name for r in rules] == ["note-big-vip-orders"]
    assert rules[0].source["conditions"]["all"][0]["use"] == "big-order"  # stored as written
    assert store.definitions_of_kind("other", "rule") == []
    store.delete(organization="acme", kind="condition_template", name="big-order", actor="t")
    assert store.definitions_of_kind("acme", "condition_template") == []
