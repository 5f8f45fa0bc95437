"""The rule store side of benchmarks/parse.py (and benchmarks/workflow.py): where it lives (SQLite or a
temporary Postgres database), filling it with copies of an example set (the example rules, or the
example workflows), and checking the loader follows it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench_common import progress, temporary_postgres_database

ROOT = Path(__file__).resolve().parents[1]
INCLUDE = ROOT / "include"
EXAMPLE_RULES = INCLUDE / "rules"
DEMO_CATALOG = INCLUDE / "catalog" / "acme.yaml"


@dataclass(frozen=True)
class ExampleSet:
    """What a store is filled with: copies of ``examples`` (files or folders), round robin, after
    ``prerequisites`` (the definitions they use, stored once, as they are)."""

    name: str
    examples: tuple[Path, ...]
    prerequisites: tuple[Path, ...] = ()


RULES = ExampleSet("rules", (EXAMPLE_RULES,))
WORKFLOWS = ExampleSet(
    "workflows",
    (INCLUDE / "workflows" / "route-new-orders.yaml", INCLUDE / "workflows" / "monday-sales-review.yaml"),
    # the condition template route-new-orders uses, and the report monday-sales-review runs
    prerequisites=(INCLUDE / "templates" / "big-order.yaml", INCLUDE / "reports" / "weekly-sales.yaml"),
)


@contextmanager
def rule_store_database(requested: str | None, work: Path, *, keep: bool) -> Iterator[str]:
    """The store URL to use: a SQLite file, or a temporary database for a postgresql URL."""
    if requested is None:
        yield f"sqlite:///{work / 'automation.db'}"
        return
    import sqlalchemy as sa

    url = sa.make_url(requested)
    if url.get_backend_name() == "sqlite":
        if url.database and Path(url.database).exists():
            raise SystemExit(
                f"--store-url: {url.database} exists; give a SQLite file that does not exist yet"
            )
        yield requested
        return
    with temporary_postgres_database(requested, "parse_bench", keep=keep) as store_url:
        yield store_url


# -- building the store ------------------------------------------------------------------------------


def example_documents(examples: ExampleSet = RULES) -> list[dict[str, Any]]:
    from rule_compiler.loading import expand_paths, read_definition_file

    documents = [read_definition_file(path) for path in expand_paths(list(examples.examples))]
    if not documents:
        raise SystemExit(f"no example {examples.name} in {[str(p) for p in examples.examples]}")
    return sorted(documents, key=lambda doc: str(doc["name"]))


def bench_document(examples: list[dict[str, Any]], index: int) -> dict[str, Any]:
    """Copy number ``index`` (1-based) of the examples, round robin, under a unique name."""
    example = examples[(index - 1) % len(examples)]
    document = copy.deepcopy(example)
    document["name"] = f"bench-{index:04d}-{example['name']}"
    return document


class _Compiler:
    """Compiles documents against the store as the CLI does (catalog, the templates and stored names
    they use), gathering that context once per example."""

    def __init__(self, store: Any) -> None:
        from rule_compiler.catalog import Catalog

        self.store = store
        self.catalog = Catalog.model_validate(store.get_catalog("acme"))
        self.contexts: dict[str, Any] = {}

    def compile(self, document: dict[str, Any], example: str) -> Any:
        from rule_compiler.registration import compile_in, context_from_store

        if example not in self.contexts:
            self.contexts[example] = context_from_store(self.store, "acme", document, catalog=self.catalog)
        return compile_in(document, self.contexts[example])


def store_prerequisites(store: Any, examples: ExampleSet) -> list[str]:
    """Register the example set's prerequisites as they are; the dag ids of those that have a DAG."""
    from rule_compiler.loading import read_definition_file
    from rule_compiler.registration import Compiled, register

    compiler, dag_ids = _Compiler(store), []
    for path in examples.prerequisites:
        compiled = compiler.compile(read_definition_file(path), str(path))
        register(store, compiled, actor="benchmark")
        if isinstance(compiled, Compiled):
            dag_ids.append(compiled.spec.dag_id)
    return dag_ids


def build_store(store_url: str, rules: int, examples: ExampleSet = RULES) -> tuple[Any, list[str]]:
    """A fresh store with the demo catalog, the example set's prerequisites and ``rules`` registered
    copies of its examples; the dag ids of everything stored."""
    import yaml

    from rule_compiler.registration import register
    from rule_compiler.store import RuleStore

    store = RuleStore(store_url)
    store.upgrade()
    store.put_catalog(
        organization="acme", catalog=yaml.safe_load(DEMO_CATALOG.read_text()), actor="benchmark"
    )
    dag_ids = store_prerequisites(store, examples)
    compiler = _Compiler(store)
    documents = example_documents(examples)
    step = max(1, rules // 10)
    for index in range(1, rules + 1):
        document = bench_document(documents, index)
        compiled = compiler.compile(document, str(document["name"]).split("-", 2)[2])
        register(store, compiled, actor="benchmark")
        dag_ids.append(compiled.spec.dag_id)
        if index % step == 0 or index == rules:
            progress(f"  registered {index}/{rules} {examples.name}")
    return store, dag_ids


# -- checks that the loader reads the store on every parse -------------------------------------------------


def check_store_is_reread(
    store: Any,
    loader_folder: Path,
    rules: int,
    parse: Callable[[Path], Any],
    examples: ExampleSet = RULES,
) -> dict[str, Any]:
    """Add a copy of an example to the store, parse, delete it, parse: each parse must follow the
    store. ``rules``: the DAGs the store holds before."""
    from rule_compiler.registration import register

    document = bench_document(example_documents(examples), rules + 1)
    example = document["name"].split("-", 2)[2]
    document["name"] = "bench-extra-" + example
    compiled = _Compiler(store).compile(document, example)
    register(store, compiled, actor="benchmark")
    added = set(parse(loader_folder).dag_ids)
    store.delete(organization="acme", kind=compiled.definition.kind, name=document["name"], actor="benchmark")
    removed = set(parse(loader_folder).dag_ids)
    ok = compiled.spec.dag_id in added and len(added) == rules + 1
    ok = ok and compiled.spec.dag_id not in removed and len(removed) == rules
    if not ok:
        raise SystemExit(
            f"the loader did not follow the store: {len(added)} DAGs after adding a rule, "
            f"{len(removed)} after deleting it (expected {rules + 1}, then {rules})"
        )
    return {"dags_after_adding_a_rule": len(added), "dags_after_deleting_it": len(removed)}
