"""Expansion bombs and oversized specs (issue 13, part 2): condition templates that multiply (100 leaves,
used 100 times, used 30 times: 300,000 leaves from a 300-byte rule) are counted before anything is
expanded and refused at the ``use``; a compiled spec over the size cap is refused at registration and
never parsed by the DAG loader. Through the compiler, the DAG loader and the CLI; the REST view's side is
tests/api/test_expansion_limits_api.py."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from rule_compiler import condition_templates
from rule_compiler.canonical import MAX_SPEC_BYTES
from rule_compiler.catalog import Catalog
from rule_compiler.cli import main
from rule_compiler.condition_templates import MAX_EXPANDED_LEAVES, expanded_leaves
from rule_compiler.definitions import ConditionTemplateDefinition
from rule_compiler.errors import RuleValidationError
from rule_compiler.registration import Compiled, compile_document
from rule_compiler.validation import validate_definition
from tests.conftest import DEMO_CATALOG

ORG = "acme"


class _NoAliases(yaml.SafeDumper):
    """Repeated values written out in full: the loader refuses anchors and aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _yaml(doc: Any) -> str:
    return yaml.dump(doc, Dumper=_NoAliases)


def _catalog() -> Catalog:
    return Catalog.model_validate(yaml.safe_load(DEMO_CATALOG.read_text()))


def _template_doc(name: str, condition: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "condition_template", "name": name, "organization": ORG, "condition": condition}


def bomb_templates() -> dict[str, dict[str, Any]]:
    """t1: 100 leaves; t2: 10 x 10 uses of t1 (10,000); t3: 30 uses of t2 (300,000)."""
    leaves = [{"field": "total", "operator": "gt", "value": i} for i in range(100)]
    return {
        "t1": _template_doc("t1", {"any": leaves}),
        "t2": _template_doc("t2", {"all": [{"any": [{"use": "t1"}] * 10}] * 10}),
        "t3": _template_doc("t3", {"any": [{"use": "t2"}] * 30}),
    }


def parsed(docs: dict[str, dict[str, Any]]) -> dict[str, ConditionTemplateDefinition]:
    return {name: ConditionTemplateDefinition.model_validate(doc) for name, doc in docs.items()}


def rule_doc(conditions: Any, *, organization: bool = True, **changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "kind": "rule",
        "name": "bomb",
        "trigger": {"type": "event", "connection": "app_db", "table": "orders", "events": ["created"]},
        "conditions": conditions,
        "actions": [
            {
                "id": "note",
                "type": "update_record",
                "connection": "app_db",
                "table": "orders",
                "values": {"note": "x"},
            }
        ],
        **changes,
    }
    if organization:
        doc["organization"] = ORG
    return doc


BOMB_RULE = rule_doc({"use": "t3"})


@pytest.fixture
def expander_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every call of the expander (its node walk), recorded; it still works."""
    calls: list[str] = []
    original = condition_templates._Expander.node

    def spy(self: Any, node: Any, path: str, *args: Any) -> Any:
        calls.append(path)
        return original(self, node, path, *args)

    monkeypatch.setattr(condition_templates._Expander, "node", spy)
    yield calls


def _issues(exc: pytest.ExceptionInfo[RuleValidationError]) -> list[tuple[str, str | None]]:
    return [(i.path, i.code) for i in exc.value.issues]


# -- the compiler ------------------------------------------------------------------------------------


def test_counting_is_exact_and_does_not_expand(expander_calls: list[str]) -> None:
    templates = parsed(bomb_templates())
    assert expanded_leaves(templates["t3"].condition, templates) == 300_000
    assert expanded_leaves(templates["t1"].condition, templates) == 100
    assert expander_calls == []


def test_bomb_is_refused_at_the_use_before_expanding(expander_calls: list[str]) -> None:
    templates = parsed(bomb_templates())
    catalog = _catalog()
    tracemalloc.start()
    try:
        with pytest.raises(RuleValidationError) as caught:
            compile_document(BOMB_RULE, catalog, templates=templates)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert _issues(caught) == [("conditions.use", "too_many_conditions")]
    message = caught.value.issues[0].message
    assert "'t3' expands to 300,000 leaf conditions" in message and "at most 1,000" in message
    assert expander_calls == []  # the expander never ran
    assert peak < 5 * 1024 * 1024, peak  # the expansion took 270 MiB


def test_the_limit_is_per_rule_counting_every_where_and_inline_leaves() -> None:
    templates = parsed(bomb_templates())
    ten = {"all": [{"use": "t1"}] * 10}  # exactly the limit
    assert MAX_EXPANDED_LEAVES == 1_000
    compiled = compile_document(rule_doc(ten), _catalog(), templates=templates)
    assert isinstance(compiled, Compiled) and len(compiled.spec_json.encode()) < MAX_SPEC_BYTES

    one_more = {"all": [*ten["all"], {"field": "total", "operator": "gt", "value": 0}]}
    with pytest.raises(RuleValidationError) as caught:
        compile_document(rule_doc(one_more), _catalog(), templates=templates)
    assert _issues(caught) == [("conditions.all[0].use", "too_many_conditions")]
    assert "(1,001 in all)" in caught.value.issues[0].message

    where = rule_doc(ten)
    where["actions"][0]["where"] = {"use": "t1"}
    with pytest.raises(RuleValidationError) as caught:
        compile_document(where, _catalog(), templates=templates)
    assert caught.value.issues[0].code == "too_many_conditions"

    inline = {"any": [{"any": [{"field": "total", "operator": "gt", "value": i}] * 100} for i in range(11)]}
    with pytest.raises(RuleValidationError) as caught:
        compile_document(rule_doc(inline), _catalog(), templates={})
    assert _issues(caught) == [("conditions", "too_many_conditions")]


def test_a_template_that_expands_too_far_is_refused_at_its_use(expander_calls: list[str]) -> None:
    docs = bomb_templates()
    templates = parsed(docs)
    assert validate_definition(docs["t1"], None, templates=templates).name == "t1"
    expander_calls.clear()
    with pytest.raises(RuleValidationError) as caught:
        validate_definition(docs["t2"], None, templates=templates)
    assert _issues(caught) == [("condition.all[0].any[0].use", "too_many_conditions")]
    assert "'t1' expands to 100 leaf conditions (10,000 in all)" in caught.value.issues[0].message
    with pytest.raises(RuleValidationError):
        validate_definition(docs["t3"], None, templates=templates)
    assert expander_calls == []


def test_cycles_and_deep_nesting_still_answer_their_own_errors() -> None:
    docs = {
        "ping": _template_doc("ping", {"not": {"use": "pong"}}),
        "pong": _template_doc("pong", {"not": {"use": "ping"}}),
    }
    with pytest.raises(RuleValidationError, match="cycle: ping -> pong -> ping"):
        compile_document(rule_doc({"use": "ping"}), _catalog(), templates=parsed(docs))


def big_webhook_rule(size: int) -> dict[str, Any]:
    doc = rule_doc({"field": "total", "operator": "gt", "value": 1})
    doc["actions"] = [
        {
            "id": "hook",
            "type": "call_webhook",
            "url": "https://hooks.example.com/x",
            "body": {"pad": "x" * size},
        }
    ]
    return doc


def test_a_spec_over_the_size_cap_is_refused() -> None:
    assert MAX_SPEC_BYTES == 256 * 1024
    assert isinstance(compile_document(big_webhook_rule(1_000), _catalog()), Compiled)
    with pytest.raises(RuleValidationError) as caught:
        compile_document(big_webhook_rule(MAX_SPEC_BYTES), _catalog())
    assert _issues(caught) == [("(document)", "spec_too_large")]
    assert f"at most {MAX_SPEC_BYTES:,}" in caught.value.issues[0].message


def test_the_loader_serves_a_placeholder_for_an_oversized_stored_spec() -> None:
    from rule_engine.loader import _render_one

    dag_id = "rule__acme__huge"
    spec = json.dumps({"dag_id": dag_id, "pad": "x" * MAX_SPEC_BYTES})
    dag = _render_one(dag_id, spec, "0" * 64)
    assert "render-error" in dag.tags and "over the" in (dag.doc_md or "")


# -- the CLI -----------------------------------------------------------------------------------------


def test_cli_validate_refuses_the_bomb(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], expander_calls: list[str]
) -> None:
    folder = tmp_path / "templates"
    folder.mkdir()
    for name, doc in bomb_templates().items():
        (folder / f"{name}.yaml").write_text(_yaml(doc))
    rule = tmp_path / "bomb.yaml"
    rule.write_text(_yaml(BOMB_RULE))
    code = main(["validate", "--catalog", str(DEMO_CATALOG), "--templates", str(folder), str(rule)])
    out = capsys.readouterr().out
    assert code == 1
    assert "conditions.use" in out and "expands to 300,000 leaf conditions" in out
    assert expander_calls == []
