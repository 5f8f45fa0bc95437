"""The IR's task kinds and the operator registry name the same set.

The IR declares the kinds a ``TaskSpec`` may carry once (``rule_compiler.compiler.ir.TaskKind``); the
renderer's closed registry (``rule_engine.render.registry.OPERATOR_PATHS``) maps each to an operator
class. A kind on one side only is either a spec no DAG can render, or an operator nothing compiles to.
The declared set is also checked against what the compiler really emits: every example definition, and
a rule with one action of every action type (lowered directly: validation still refuses the actions
that arrive with workflows, but their kinds are declared and registered).
"""

from __future__ import annotations

import typing
from typing import Any

import pytest
import yaml
from rule_engine.operators.base import RuleTaskOperator
from rule_engine.render.dag import UNSUPPORTED_TASK_KINDS
from rule_engine.render.registry import OPERATOR_PATHS, operator_class, operator_modules

from rule_compiler.catalog import Catalog
from rule_compiler.compiler import DagSpec
from rule_compiler.compiler.ir import TaskKind, TaskSpec
from rule_compiler.compiler.lower import compile_rule
from rule_compiler.definitions import RuleDefinition
from rule_compiler.definitions.action_types import ACTION_TYPES
from rule_compiler.kinds import KINDS, apply_rank
from rule_compiler.loading import expand_paths, read_definition_file
from rule_compiler.registration import Compiled, compile_document, compile_in, context_from_store, register
from rule_compiler.store import RuleStore
from tests.compiler.test_fixtures import fixture_templates
from tests.conftest import DEMO_CATALOG, EXAMPLE_FOLDERS, LOCAL_FIXTURES

pytestmark = pytest.mark.airflow


def _one_sided(ir: set[str], registry: set[str]) -> str:
    return (
        f"task kinds the IR declares but the operator registry lacks: {sorted(ir - registry)}; "
        f"in the registry but not declared by the IR (TaskKind): {sorted(registry - ir)}"
    )


def test_the_ir_declares_its_task_kinds_once() -> None:
    declared = typing.get_args(TaskKind)
    assert typing.get_args(TaskSpec.model_fields["kind"].annotation) == declared  # the field is TaskKind
    assert len(declared) == len(set(declared)), "TaskKind repeats a kind"


def test_ir_task_kinds_and_the_operator_registry_name_the_same_set() -> None:
    """Every kind the IR declares has an operator, but those the renderer refuses (placeholder DAG)."""
    ir, registry = set(typing.get_args(TaskKind)) - set(UNSUPPORTED_TASK_KINDS), set(OPERATOR_PATHS)
    assert ir == registry, _one_sided(ir, registry)
    assert not set(UNSUPPORTED_TASK_KINDS) & registry


def test_every_registered_kind_resolves_to_a_rule_task_operator() -> None:
    modules = set(operator_modules())
    for kind in OPERATOR_PATHS:
        operator = operator_class(kind)
        assert isinstance(operator, type) and issubclass(operator, RuleTaskOperator), kind
        assert operator.__module__ in modules, kind
    with pytest.raises(KeyError):
        operator_class("no_such_kind")


def test_every_action_type_is_a_task_kind() -> None:
    """An action's task carries the action's type as its kind (compiler/lower.py)."""
    missing = set(ACTION_TYPES) - set(typing.get_args(TaskKind))
    assert not missing, f"action types with no task kind: {sorted(missing)}"


def _catalog() -> Catalog:
    return Catalog.model_validate(yaml.safe_load(DEMO_CATALOG.read_text()))


def _every_action_rule() -> dict[str, Any]:
    """A data rule with one action of every action type (compiled directly: its targets are not stored)."""
    actions: dict[str, dict[str, Any]] = {
        "create_record": {"connection": "app_db", "table": "orders", "values": {"note": "x"}},
        "update_record": {"connection": "app_db", "table": "orders", "values": {"priority": "high"}},
        "delete_record": {"connection": "app_db", "table": "orders"},
        "send_notification": {"channel": "slack", "connection": "slack_oncall", "body": "hello"},
        "call_webhook": {"url": "https://hooks.example.com/orders"},
        "trigger_workflow": {"workflow": "follow-up"},
        "generate_report": {"report": "weekly-sales"},
    }
    assert set(actions) == set(ACTION_TYPES), "one action of every action type"
    return {
        "kind": "rule",
        "name": "every-action",
        "organization": "acme",
        "trigger": {
            "type": "data",
            "connection": "app_db",
            "sql": "select count(*) from orders",
            "check": {"operator": "gt", "value": 0},
            "schedule": "*/15 * * * *",
        },
        "actions": [
            {"id": action_type.replace("_", "-"), "type": action_type, **params}
            for action_type, params in actions.items()
        ],
    }


def _compiled_examples(tmp_store: RuleStore) -> list[DagSpec]:
    """Every example with a DAG, compiled the way the CLI does (include/ against the store, what it
    uses first; the fixture set against its own condition templates)."""
    specs: list[DagSpec] = []
    tmp_store.put_membership(
        organization="acme", username="admin", role="admin", actor="task-kinds"
    )  # assignee
    documents = [read_definition_file(p) for p in expand_paths(list(EXAMPLE_FOLDERS))]
    for data in sorted(documents, key=lambda d: apply_rank(d.get("kind"))):
        compiled = compile_in(data, context_from_store(tmp_store, data["organization"], data))
        register(tmp_store, compiled, actor="task-kinds")
        if isinstance(compiled, Compiled):
            specs.append(compiled.spec)
    for path in expand_paths([LOCAL_FIXTURES / "good"]):
        compiled = compile_document(read_definition_file(path), _catalog(), templates=fixture_templates())
        if isinstance(compiled, Compiled):  # the set holds a condition template too
            specs.append(compiled.spec)
    return specs


def test_the_compiler_emits_exactly_the_declared_kinds(store: RuleStore) -> None:
    specs = _compiled_examples(store)
    assert {spec.kind for spec in specs} == {name for name, kind in KINDS.items() if kind.has_dag}
    every_action = compile_rule(RuleDefinition.model_validate(_every_action_rule()), _catalog())
    emitted: set[str] = {task.kind for spec in [*specs, every_action] for task in spec.tasks}
    declared: set[str] = set(typing.get_args(TaskKind))
    assert emitted == declared, (
        f"declared but never emitted: {sorted(declared - emitted)}; "
        f"emitted but not declared: {sorted(emitted - declared)}"
    )
    rendered = emitted - set(UNSUPPORTED_TASK_KINDS)  # the waiting nodes' DAGs are placeholders
    assert rendered == set(OPERATOR_PATHS), _one_sided(rendered, set(OPERATOR_PATHS))
