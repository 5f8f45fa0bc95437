"""The kinds table's contract (``rule_compiler.kinds.KINDS``): what every row promises, for a real example
of each kind.

For every row, an example document from ``include/`` validates, compiles (a ``Compiled`` with a
``DagSpec`` exactly when the row has a DAG, else a ``CompiledTemplate``), round-trips through a real
store (the same source and hashes come back; loadable as a DAG exactly when the row has one), names in
``uses`` exactly the stored definitions it uses (and the dependents search finds it from them), and
has a listing summary. The table covers every ``kind`` the definition models declare; planned kinds
are refused. ``RuleStore.create`` refuses an existing name, also when two creates of one new name race
on Postgres. Pure: no airflow.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import pkgutil
import re
import threading
import typing
from collections.abc import Iterator
from typing import Any

import pydantic
import pytest
import sqlalchemy as sa
import yaml

import rule_compiler.definitions
from rule_compiler.canonical import content_hash
from rule_compiler.catalog import Catalog
from rule_compiler.compiler import DagSpec
from rule_compiler.dependents import direct_users
from rule_compiler.errors import AlreadyExistsError, RuleValidationError
from rule_compiler.kinds import KINDS, PLANNED_KINDS, Kind, Ref, apply_rank, kind_named
from rule_compiler.loading import expand_paths, read_definition_file
from rule_compiler.registration import (
    Compiled,
    CompiledTemplate,
    compile_document,
    context_from_store,
    register,
)
from rule_compiler.store import ApplyResult, DefinitionWrite, RuleStore
from rule_compiler.validation import validate_document
from tests.conftest import DEMO_CATALOG, EXAMPLE_FOLDERS, ROOT

INCLUDE = ROOT / "include"
#: The examples each row is checked with, and exactly what each uses: (file, expected uses).
CONTRACT_EXAMPLES: list[tuple[str, set[Ref]]] = [
    ("rules/flag-big-paid-orders.yaml", set()),
    ("rules-using-templates/note-big-vip-orders.yaml", {("condition_template", "big-order")}),
    ("rules-using-templates/tell-vip-account-managers.yaml", {("notification_template", "vip-order")}),
    ("reports/weekly-sales.yaml", set()),
    ("workflows/route-new-orders.yaml", {("condition_template", "big-order")}),
    ("workflows/note-big-shipped-orders.yaml", {("workflow_template", "follow-up-status")}),
    ("templates/big-order.yaml", set()),
    ("templates/vip-order.yaml", set()),
    ("rule-templates/notify-on-status.yaml", set()),
    ("rules-using-templates/deprioritise-shipped-orders.yaml", {("rule_template", "notify-on-status")}),
    ("templates/follow-up-status.yaml", set()),
]
ACTOR = "kinds-contract"


def _catalog() -> Catalog:
    return Catalog.model_validate(yaml.safe_load(DEMO_CATALOG.read_text()))


def _examples() -> dict[Ref, dict[str, Any]]:
    """(kind, name) → raw document, for every example in include/."""
    found: dict[Ref, dict[str, Any]] = {}
    for path in expand_paths(list(EXAMPLE_FOLDERS)):
        data = read_definition_file(path)
        found[(data["kind"], data["name"])] = data
    return found


@contextlib.contextmanager
def _store(url: str) -> Iterator[RuleStore]:
    """A migrated store holding acme's demo catalog."""
    store = RuleStore(url)
    store.upgrade()
    store.put_catalog(organization="acme", catalog=yaml.safe_load(DEMO_CATALOG.read_text()), actor=ACTOR)
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def store(any_db_url: str) -> Iterator[RuleStore]:
    """A migrated store holding acme's demo catalog; each test runs on SQLite and on Postgres."""
    with _store(any_db_url) as rule_store:
        yield rule_store


def _register_with_uses(store: RuleStore, data: dict[str, Any], examples: dict[Ref, dict[str, Any]]) -> None:
    """Store what ``data`` uses first (from the examples, through the real registration path)."""
    kind = KINDS[data["kind"]]
    for used in sorted(kind.uses(data), key=lambda ref: apply_rank(ref[0])):
        _register_with_uses(store, examples[used], examples)
    context = context_from_store(store, data["organization"], data)
    compiled = compile_document(
        data,
        context.catalog,
        templates=context.templates,
        notification_templates=context.notification_templates,
        stored=context.stored,
        definition_templates=context.definition_templates,
    )
    register(store, compiled, actor=ACTOR)


def test_every_kind_has_a_contract_example() -> None:
    kinds = {read_definition_file(INCLUDE / path)["kind"] for path, _ in CONTRACT_EXAMPLES}
    assert kinds == set(KINDS), f"no contract example for {sorted(set(KINDS) - kinds)}"
    with_uses = {ref[0] for _, uses in CONTRACT_EXAMPLES for ref in uses}
    referable = {"condition_template", "notification_template", "rule_template", "workflow_template"}
    assert with_uses == referable, "the examples use each kind a rule or workflow may use"


@pytest.mark.parametrize(("path", "expected_uses"), CONTRACT_EXAMPLES, ids=[p for p, _ in CONTRACT_EXAMPLES])
def test_a_kind_validates_compiles_and_round_trips(
    store: RuleStore, path: str, expected_uses: set[Ref]
) -> None:
    examples = _examples()
    data = read_definition_file(INCLUDE / path)
    kind: Kind = kind_named(data["kind"])
    assert kind is KINDS[data["kind"]] and kind.name == data["kind"]
    org, name = data["organization"], data["name"]

    # uses: exactly what the document names, read from the raw document
    assert kind.uses(data) == expected_uses
    for used in expected_uses:
        _register_with_uses(store, examples[used], examples)
        assert store.get(organization=org, kind=used[0], name=used[1]).version == 1

    # validates and compiles against what the store holds
    context = context_from_store(store, org, data)
    assert (context.catalog is not None) == kind.catalog
    kwargs: dict[str, Any] = {
        "templates": context.templates,
        "notification_templates": context.notification_templates,
        "stored": context.stored,
        "definition_templates": context.definition_templates,
    }
    validated = validate_document(data, context.catalog, **kwargs)
    assert isinstance(validated.definition, kind.model)
    assert (validated.definition.kind, validated.definition.name) == (kind.name, name)
    compiled = compile_document(data, context.catalog, **kwargs)
    assert compiled.kind is kind
    assert isinstance(compiled, Compiled) == kind.has_dag
    assert isinstance(compiled, CompiledTemplate) == (not kind.has_dag)
    if isinstance(compiled, Compiled):
        assert isinstance(compiled.spec, DagSpec)
        assert (compiled.spec.kind, compiled.spec.name, compiled.spec.organization) == (kind.name, name, org)
        assert compiled.spec.spec_hash == compiled.spec_hash
        assert compiled.spec.to_json() == compiled.spec_json
        assert compiled.spec.active  # every example is active
    else:
        assert json.loads(compiled.spec_json) == validated.definition.model_dump(mode="json", by_alias=True)
    write = compiled.write(ACTOR)
    identity = (kind.name, org, name, compiled.dag_id)
    assert (write.kind, write.organization, write.name, write.dag_id) == identity
    assert write.active is True

    # a real store gives back the same source and spec
    result = register(store, compiled, actor=ACTOR)
    assert result == ApplyResult("created", 1, compiled.dag_id)
    assert register(store, compiled, actor=ACTOR).status == "unchanged"
    stored = store.get(organization=org, kind=kind.name, name=name)
    assert (stored.kind, stored.organization, stored.name, stored.dag_id) == identity
    assert stored.source == write.source
    assert stored.source_hash == write.source_hash == content_hash(stored.source)
    assert stored.spec_hash == compiled.spec_hash
    assert stored.spec_json == compiled.spec_json
    assert stored.active is True

    # loadable as a DAG exactly when the row has one (the store's own notion of "has a DAG"), for
    # this definition and for what it uses
    rows = [row for k in KINDS for row in store.definitions_of_kind(org, k)]
    loadable = {row.dag_id: row for row in store.loadable_specs()}
    assert {row.dag_id for row in rows if KINDS[row.kind].has_dag} == set(loadable)
    assert (compiled.dag_id in loadable) == kind.has_dag
    assert store.loadable_specs(compiled.dag_id) == ([loadable[compiled.dag_id]] if kind.has_dag else [])
    if isinstance(compiled, Compiled):
        assert loadable[compiled.dag_id].spec_hash == compiled.spec_hash
        assert DagSpec.model_validate_json(loadable[compiled.dag_id].spec_json) == compiled.spec

    # uses, read from the stored source, name exactly the stored definitions; the dependents search
    # finds this one from each of them
    assert kind.uses(stored.source) == expected_uses
    for used_kind, used_name in expected_uses:
        assert store.get(organization=org, kind=used_kind, name=used_name).kind == used_kind
        assert name in direct_users(rows, (used_kind, used_name)).get(kind.name, [])

    # its listing summary
    summary = kind.summary(stored.source)
    assert isinstance(summary, dict)
    assert all(isinstance(key, str) for key in summary)
    json.dumps(summary)  # listings are JSON
    if kind.name == "rule":  # read from the expanded rule (a rule built from a template has no trigger)
        assert stored.trigger_type == compiled.definition.trigger.type  # type: ignore[union-attr]
        assert summary == {"trigger_type": data["trigger"]["type"] if "use" not in data else ""}


def test_every_example_validates_and_compiles_to_its_kinds_shape() -> None:
    """Every definition in include/ (not only the contract's), against its own examples."""
    examples = _examples()
    catalog = _catalog()
    templates = {
        n: KINDS["condition_template"].model.model_validate(d)
        for (k, n), d in examples.items()
        if k == "condition_template"
    }
    notification_templates = {
        n: KINDS["notification_template"].model.model_validate(d)
        for (k, n), d in examples.items()
        if k == "notification_template"
    }
    definition_templates = {
        template_kind: {
            n: KINDS[template_kind].model.model_validate(d)
            for (k, n), d in examples.items()
            if k == template_kind
        }
        for template_kind in ("rule_template", "workflow_template")
    }
    assert {kind for kind, _ in examples} == set(KINDS)
    stored = {k: [n for (kind, n) in examples if kind == k] for k in KINDS if KINDS[k].has_dag}
    for (kind_name, name), data in examples.items():
        kind = KINDS[kind_name]
        compiled = compile_document(
            data,
            catalog if kind.catalog else None,
            templates=templates,  # type: ignore[arg-type]
            notification_templates=notification_templates,  # type: ignore[arg-type]
            stored=stored,  # type: ignore[arg-type]
            definition_templates=definition_templates,  # type: ignore[arg-type]
        )
        assert isinstance(compiled, Compiled) == kind.has_dag, name
        assert compiled.definition.name == name
        assert set(kind.uses(data)) <= set(examples), f"{name} uses a definition include/ lacks"


# -- the table covers the definition models ----------------------------------------------------------------


def _model_kinds() -> dict[str, type[pydantic.BaseModel]]:
    """kind → model, for every pydantic model in ``rule_compiler.definitions`` whose ``kind`` field is a
    Literal (what a document's ``kind:`` may say)."""
    found: dict[str, type[pydantic.BaseModel]] = {}
    package = rule_compiler.definitions
    modules = [package] + [
        importlib.import_module(info.name)
        for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}.")
    ]
    for module in modules:
        for value in vars(module).values():
            if not (isinstance(value, type) and issubclass(value, pydantic.BaseModel)):
                continue
            field = value.model_fields.get("kind")
            if field is None or typing.get_origin(field.annotation) is not typing.Literal:
                continue
            for literal in typing.get_args(field.annotation):
                assert found.get(literal, value) is value, f"two models declare kind {literal!r}"
                found[literal] = value
    return found


def test_the_loaders_dag_kinds_are_the_kinds_with_a_dag() -> None:
    from rule_compiler.store.specs import _LOADABLE_SQL, DAG_KINDS

    assert set(DAG_KINDS) == {name for name, kind in KINDS.items() if kind.has_dag}
    assert _LOADABLE_SQL.endswith(f"d.kind IN ({', '.join(repr(kind) for kind in DAG_KINDS)})")


def test_the_kinds_table_covers_every_kind_the_models_declare() -> None:
    """A planned kind may have its model before its row (workflow: its models and checks are built, its
    lowering is not), and is still refused; every other kind a model declares has its row."""
    declared = _model_kinds()
    built = set(declared) - set(PLANNED_KINDS)
    assert built == set(KINDS), (
        f"kinds in a model but not in KINDS: {sorted(built - set(KINDS))}; "
        f"in KINDS but no model declares them: {sorted(set(KINDS) - built)}"
    )
    for name, kind in KINDS.items():
        assert kind.model is declared[name], f"KINDS[{name!r}].model is not the model declaring it"
    assert not set(PLANNED_KINDS) & set(KINDS)


def test_planned_kinds_are_refused_at_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every kind of the format is built now; a kind reserved for later would be refused so."""
    planned = "sample_kind"
    monkeypatch.setattr("rule_compiler.kinds.PLANNED_KINDS", (planned,))
    data = {"kind": planned, "name": "sample", "organization": "acme"}
    with pytest.raises(RuleValidationError) as refused:
        validate_document(data, _catalog())
    assert [(issue.path, issue.code) for issue in refused.value.issues] == [("kind", "kind")]
    message = refused.value.issues[0].message
    assert "not supported by this release yet" in message
    assert f"kind '{planned}'" in message
    assert all(name in message for name in KINDS)  # it names what is supported
    with pytest.raises(RuleValidationError) as compiling:
        compile_document(data, _catalog())
    assert compiling.value.issues == refused.value.issues


# -- RuleStore.create: an existing name is refused, also under a race -------------------------------------


def _template_write(actor: str = ACTOR) -> DefinitionWrite:
    compiled = compile_document(read_definition_file(INCLUDE / "templates" / "big-order.yaml"), None)
    return compiled.write(actor)


def test_create_twice_refuses_the_second(store: RuleStore) -> None:
    write = _template_write()
    assert store.create(write) == ApplyResult("created", 1, write.dag_id)
    with pytest.raises(AlreadyExistsError, match="exists"):
        store.create(write)
    versions = store.versions(organization="acme", kind=write.kind, name=write.name)
    assert [v.version for v in versions] == [1]


_INSERT_DEFINITION = re.compile(r"^\s*INSERT INTO definitions\b", re.IGNORECASE)
BARRIER_TIMEOUT_S = 60  # only so a broken hook fails the test instead of hanging it; nothing is timed


def test_concurrent_creates_of_one_new_name_on_postgres(postgres_url: str) -> None:
    """Both creates have checked that the name is free, and neither has inserted or committed, when
    they go on: exactly one is created, the other is refused, and one version is stored."""
    with _store(postgres_url) as store:
        write = _template_write()
        barrier = threading.Barrier(2, timeout=BARRIER_TIMEOUT_S)
        held: set[int] = set()

        def hold_before_insert(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            if _INSERT_DEFINITION.match(statement) and threading.get_ident() not in held:
                held.add(threading.get_ident())
                barrier.wait()  # both transactions are past the existence check, neither has written

        sa.event.listen(store.engine, "before_cursor_execute", hold_before_insert)
        outcomes: list[ApplyResult | BaseException] = []
        lock = threading.Lock()

        def create() -> None:
            try:
                result: ApplyResult | BaseException = store.create(write)
            except BaseException as exc:  # recorded and asserted below
                result = exc
            with lock:
                outcomes.append(result)

        threads = [threading.Thread(target=create) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        sa.event.remove(store.engine, "before_cursor_execute", hold_before_insert)

        assert len(held) == 2, "both creates reached the insert"
        created = [o for o in outcomes if isinstance(o, ApplyResult)]
        refused = [o for o in outcomes if isinstance(o, AlreadyExistsError)]
        assert created == [ApplyResult("created", 1, write.dag_id)], outcomes
        assert len(refused) == 1, outcomes
        assert "created concurrently" in str(refused[0])
        versions = store.versions(organization="acme", kind=write.kind, name=write.name)
        assert [v.version for v in versions] == [1]
        assert [e.action for e in store.audit_entries(kind=write.kind)] == ["create"]
        assert store.get(organization="acme", kind=write.kind, name=write.name).source == write.source
