"""Every class path that serialized DAGs or trigger rows hold stays importable.

Airflow stores what it needs to run a DAG by import path: each serialized task names its operator
(``_task_module`` + ``task_type``), each asset watcher (and so each trigger row the DAG processor
writes from it) names its trigger class (``classpath``). Rows written before a release must still load
after it, so a class that moves needs a shim at its old path.

Real DAGs are built from every example definition with a DAG (include/, with include/templates applied
first, through the real registration path; and the fixture set, which adds data, webhook and slack
rules) plus the rule engine's own DAGs, loaded through the DAG loader file by a real DagBag, and
serialized with Airflow's own serializer (what the DAG processor stores). Every class path in them,
and every trigger's ``serialize()`` classpath, must be one of :data:`KNOWN_CLASS_PATHS` (a move or a new
class means consciously extending that list), and every path on the list must import to a class of
the right base.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import rule_engine.triggers
import yaml
from rule_engine.render.registry import OPERATOR_PATHS
from rule_engine.triggers.outbox import OutboxEventTrigger

from rule_compiler.kinds import KINDS, apply_rank
from rule_compiler.loading import expand_paths, read_definition_file
from rule_compiler.registration import Compiled, compile_in, context_from_store, register
from rule_compiler.store import RuleStore
from tests.airflow.conftest import apply_rules, dagbag
from tests.conftest import DEMO_CATALOG, EXAMPLE_FOLDERS, LOCAL_FIXTURES

pytestmark = pytest.mark.airflow

#: Every operator and trigger class path Airflow may hold in a serialized DAG or a trigger row. Only
#: ever extended: a class that moves keeps its old path here (and a shim there) next to its new one.
KNOWN_OPERATOR_PATHS = frozenset(
    {
        "rule_engine.operators.data_sensor.DataTriggerSensor",
        "rule_engine.operators.dispatch.DispatchDeferredOperator",
        "rule_engine.operators.dispatch.CheckFailureRatesOperator",
        "rule_engine.operators.dispatch.DispatchDigestsOperator",
        "rule_engine.operators.evaluate.EvaluateConditionsOperator",
        "rule_engine.operators.generate_report.GenerateReportOperator",
        "rule_engine.operators.generate_report.WorkflowReportOperator",
        "rule_engine.operators.notify.NotificationOperator",
        "rule_engine.operators.outbox_purge.OutboxPurgeOperator",
        "rule_engine.operators.outcome.RecordOutcomeOperator",
        "rule_engine.operators.records.RecordActionOperator",
        "rule_engine.operators.store_retention.LedgerRetentionOperator",
        "rule_engine.operators.store_retention.StoreRetentionOperator",
        "rule_engine.operators.reports.ReportDeliverOperator",
        "rule_engine.operators.reports.ReportOutcomeOperator",
        "rule_engine.operators.reports.ReportQueriesOperator",
        "rule_engine.operators.reports.ReportRenderOperator",
        "rule_engine.operators.webhooks.WebhookOperator",
        "rule_engine.operators.trigger_workflow.TriggerWorkflowOperator",
        "rule_engine.operators.workflow_nodes.WorkflowConditionOperator",
        "rule_engine.operators.workflow_nodes.WorkflowJoinOperator",
        "rule_engine.operators.workflow_waits.WorkflowApprovalOperator",
        "rule_engine.operators.workflow_waits.WorkflowDelayOperator",
    }
)
KNOWN_TRIGGER_PATHS = frozenset({"rule_engine.triggers.outbox.OutboxEventTrigger"})
#: The one task of a placeholder DAG (a stored spec that cannot be rendered).
KNOWN_PLACEHOLDER_PATHS = frozenset({"rule_engine.render.dag.RenderErrorOperator"})
KNOWN_CLASS_PATHS = KNOWN_OPERATOR_PATHS | KNOWN_TRIGGER_PATHS | KNOWN_PLACEHOLDER_PATHS

#: One instance of every trigger class under rule_engine.triggers (a new trigger class needs one here).
TRIGGER_EXAMPLES: dict[str, Callable[[], Any]] = {
    "rule_engine.triggers.outbox.OutboxEventTrigger": lambda: OutboxEventTrigger(
        connection="app_db", table="orders", events=["updated"], fields=["status"]
    ),
}
#: Registry classes no example reaches: trigger_workflow and generate_report need their target stored
#: first (their dag.test runs: tests/airflow/test_start_action_runs.py).
NOT_YET_AUTHORABLE = {
    "rule_engine.operators.trigger_workflow.TriggerWorkflowOperator",
    "rule_engine.operators.generate_report.GenerateReportOperator",
}
#: A dotted path into our own packages, as a whole serialized string.
OUR_PATH = re.compile(r"(?:rule_engine|rule_compiler)(?:\.[A-Za-z_]\w*)+")


@dataclass(frozen=True)
class Serialized:
    """The DAGs of one parse, as Airflow's serializer stores them: dag_id → serialized dict."""

    dags: dict[str, dict[str, Any]]
    expected_dag_ids: set[str]


def _register_include(store: RuleStore) -> set[str]:
    """Apply every include/ example the way the CLI's batch does (what is used first); their dag ids."""
    documents = [read_definition_file(p) for p in expand_paths(list(EXAMPLE_FOLDERS))]
    dag_ids = set()
    for data in sorted(documents, key=lambda d: apply_rank(d.get("kind"))):
        compiled = compile_in(data, context_from_store(store, data["organization"], data))
        assert register(store, compiled, actor="class-paths").status == "created"
        if isinstance(compiled, Compiled):
            dag_ids.add(compiled.dag_id)
    assert {data["kind"] for data in documents} == set(KINDS)
    return dag_ids


def _register_fixtures(store: RuleStore) -> set[str]:
    return set(apply_rules(store, LOCAL_FIXTURES / "good"))


def _serialize_parse(
    tmp: Path, register_examples: Callable[[RuleStore], set[str]], monkeypatch: pytest.MonkeyPatch
) -> Serialized:
    from airflow.serialization.serialized_objects import DagSerialization, LazyDeserializedDAG

    url = f"sqlite:///{tmp / 'automation.db'}"
    monkeypatch.setenv("AUTOMATION_STORE_URL", url)
    monkeypatch.setenv("AUTOMATION_SNAPSHOT_PATH", str(tmp / "snapshot.json"))
    store = RuleStore(url)
    try:
        store.upgrade()
        store.put_catalog(
            organization="acme", catalog=yaml.safe_load(DEMO_CATALOG.read_text()), actor="class-paths"
        )
        store.put_membership(organization="acme", username="admin", role="admin", actor="class-paths")
        dag_ids = register_examples(store)
    finally:
        store.close()
    bag = dagbag()
    assert bag.import_errors == {}
    assert dag_ids <= set(bag.dag_ids)
    for dag_id in dag_ids:
        assert "render-error" not in bag.dags[dag_id].tags, dag_id
    dags: dict[str, dict[str, Any]] = {}
    for dag_id, dag in bag.dags.items():
        data = LazyDeserializedDAG.from_dag(dag).data  # what the DAG processor stores (schema-checked)
        data = json.loads(json.dumps(data))  # as it comes back from the serialized_dag table
        assert set(DagSerialization.from_dict(data).task_ids) == set(dag.task_ids)  # what the scheduler reads
        dags[dag_id] = data
    return Serialized(dags, dag_ids)


@pytest.fixture(scope="module")
def parses(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Serialized]]:
    """Two real parses: include/'s examples, then the fixture set's."""
    found = []
    for name, register_examples in (("include", _register_include), ("fixtures", _register_fixtures)):
        with pytest.MonkeyPatch.context() as monkeypatch:
            found.append(_serialize_parse(tmp_path_factory.mktemp(name), register_examples, monkeypatch))
    yield found


def _class_paths(value: Any, key: str | None = None) -> Iterator[tuple[str, str]]:
    """(where, dotted path) of every class path of ours in a serialized structure: each task's
    ``_task_module`` + ``task_type``, and every other string that is a whole dotted path into
    ``rule_engine`` or ``rule_compiler`` (a trigger's ``classpath``, a ``__type``...)."""
    if isinstance(value, dict):
        if isinstance(value.get("_task_module"), str) and isinstance(value.get("task_type"), str):
            yield "_task_module + task_type", f"{value['_task_module']}.{value['task_type']}"
        for child_key, child in value.items():
            if child_key not in {"_task_module", "task_type"}:
                yield from _class_paths(child, child_key)
    elif isinstance(value, list):
        for child in value:
            yield from _class_paths(child, key)
    elif isinstance(value, str) and OUR_PATH.fullmatch(value):
        yield str(key), value


def _serialized_paths(parses: list[Serialized]) -> dict[str, set[str]]:
    """dotted path → where it was seen (dag id: key)."""
    found: dict[str, set[str]] = {}
    for parse in parses:
        for dag_id, data in parse.dags.items():
            for where, path in _class_paths(data):
                found.setdefault(path, set()).add(f"{dag_id}: {where}")
    return found


def _resolve(path: str) -> Any:
    module_name, _, attribute = path.rpartition(".")
    module = importlib.import_module(module_name)
    return getattr(module, attribute)


def _trigger_classes() -> dict[str, type]:
    """Every trigger class defined under rule_engine.triggers, by class path."""
    from airflow.triggers.base import BaseTrigger

    found: dict[str, type] = {}
    package = rule_engine.triggers
    for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, BaseTrigger)
                and value.__module__ == module.__name__
            ):
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return found


def test_the_examples_build_real_dags_of_every_kind_with_one(parses: list[Serialized]) -> None:
    include, fixtures = parses
    kinds_with_dag = {name for name, kind in KINDS.items() if kind.has_dag}
    assert {dag_id.split("__", 1)[0] for dag_id in include.expected_dag_ids} == kinds_with_dag
    assert fixtures.expected_dag_ids
    for parse in parses:
        assert parse.expected_dag_ids <= set(parse.dags)
        assert {"rule_engine_notifications", "rule_engine_outbox_purge", "rule_engine_retention"} <= set(
            parse.dags
        )  # our own DAGs


def test_every_serialized_class_path_imports_to_a_class(parses: list[Serialized]) -> None:
    from airflow.sdk import BaseOperator
    from airflow.triggers.base import BaseTrigger

    found = _serialized_paths(parses)
    assert found, "the serialized DAGs hold class paths of ours"
    for path, where in sorted(found.items()):
        resolved = _resolve(path)
        assert isinstance(resolved, type), f"{path} ({sorted(where)[0]}) is not a class: {resolved!r}"
        if any(w.endswith("_task_module + task_type") for w in where):
            assert issubclass(resolved, BaseOperator), path
        else:
            assert issubclass(resolved, BaseTrigger), f"{path} ({sorted(where)[0]})"


def test_serialized_class_paths_are_the_known_ones(parses: list[Serialized]) -> None:
    found = _serialized_paths(parses)
    unknown = {path: sorted(where)[:3] for path, where in found.items() if path not in KNOWN_CLASS_PATHS}
    assert not unknown, (
        "serialized DAGs hold class paths that are not in KNOWN_CLASS_PATHS (a class moved or is new: "
        f"add the new path, keep the old one importable and listed): {unknown}"
    )
    # the examples really reach (nearly) every operator: the check above is not vacuous
    registry = {f"rule_engine.operators.{module}.{name}" for module, name in OPERATOR_PATHS.values()}
    assert registry - set(found) == NOT_YET_AUTHORABLE
    assert set(found) >= KNOWN_TRIGGER_PATHS  # an event rule's asset watcher holds the trigger


def test_the_registry_and_the_triggers_are_known() -> None:
    registry = {f"rule_engine.operators.{module}.{name}" for module, name in OPERATOR_PATHS.values()}
    assert registry <= KNOWN_OPERATOR_PATHS, (
        f"not in KNOWN_OPERATOR_PATHS: {sorted(registry - KNOWN_OPERATOR_PATHS)}"
    )
    triggers = _trigger_classes()
    assert set(triggers) <= KNOWN_TRIGGER_PATHS, (
        f"not in KNOWN_TRIGGER_PATHS: {sorted(set(triggers) - KNOWN_TRIGGER_PATHS)}"
    )
    assert set(triggers) == set(TRIGGER_EXAMPLES), "TRIGGER_EXAMPLES has one instance of every trigger class"


@pytest.mark.parametrize("classpath", sorted(TRIGGER_EXAMPLES))
def test_a_trigger_row_names_a_known_importable_class(classpath: str) -> None:
    from airflow.models.trigger import Trigger

    trigger = TRIGGER_EXAMPLES[classpath]()
    serialized_path, kwargs = trigger.serialize()
    assert serialized_path == classpath
    assert serialized_path in KNOWN_TRIGGER_PATHS
    row = Trigger.from_object(trigger)  # the row the triggerer loads the trigger from
    assert row.classpath == serialized_path
    resolved = _resolve(row.classpath)
    assert resolved is type(trigger)
    assert resolved(**kwargs).serialize() == (serialized_path, kwargs)  # the triggerer rebuilds it


@pytest.mark.parametrize("path", sorted(KNOWN_CLASS_PATHS))
def test_every_known_class_path_still_imports(path: str) -> None:
    from airflow.sdk import BaseOperator
    from airflow.triggers.base import BaseTrigger

    resolved = _resolve(path)
    assert isinstance(resolved, type), f"{path} is not a class: {resolved!r}"
    base = BaseTrigger if path in KNOWN_TRIGGER_PATHS else BaseOperator
    assert issubclass(resolved, base), f"{path} is not a {base.__name__}"
