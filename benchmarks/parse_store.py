"""The rule store side of benchmarks/parse.py: where it lives (SQLite or a temporary Postgres
database), filling it with copies of the example rules, and checking the loader follows it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench_common import progress, temporary_postgres_database

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_RULES = ROOT / "include" / "rules"
DEMO_CATALOG = ROOT / "include" / "catalog" / "acme.yaml"


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


def example_documents() -> list[dict[str, Any]]:
    from rule_compiler.loading import expand_paths, read_definition_file

    documents = [read_definition_file(path) for path in expand_paths([EXAMPLE_RULES])]
    if not documents:
        raise SystemExit(f"no example rules in {EXAMPLE_RULES}")
    return sorted(documents, key=lambda doc: str(doc["name"]))


def bench_document(examples: list[dict[str, Any]], index: int) -> dict[str, Any]:
    """Copy number ``index`` (1-based) of the examples, round robin, under a unique name."""
    example = examples[(index - 1) % len(examples)]
    document = copy.deepcopy(example)
    document["name"] = f"bench-{index:04d}-{example['name']}"
    return document


def build_store(store_url: str, rules: int) -> tuple[Any, list[str]]:
    """A fresh store with the demo catalog and ``rules`` registered copies of the examples."""
    import yaml

    from rule_compiler.catalog import Catalog
    from rule_compiler.registration import compile_document, register
    from rule_compiler.store import RuleStore

    store = RuleStore(store_url)
    store.upgrade()
    store.put_catalog(
        organization="acme", catalog=yaml.safe_load(DEMO_CATALOG.read_text()), actor="benchmark"
    )
    catalog = Catalog.model_validate(store.get_catalog("acme"))
    examples = example_documents()
    dag_ids = []
    step = max(1, rules // 10)
    for index in range(1, rules + 1):
        compiled = compile_document(bench_document(examples, index), catalog)
        register(store, compiled, actor="benchmark")
        dag_ids.append(compiled.spec.dag_id)
        if index % step == 0 or index == rules:
            progress(f"  registered {index}/{rules} rules")
    return store, dag_ids


# -- checks that the loader reads the store on every parse -------------------------------------------------


def check_store_is_reread(
    store: Any, loader_folder: Path, rules: int, parse: Callable[[Path], Any]
) -> dict[str, Any]:
    """Add a rule to the store, parse, delete it, parse: each parse must follow the store."""
    from rule_compiler.catalog import Catalog
    from rule_compiler.registration import compile_document, register

    catalog = Catalog.model_validate(store.get_catalog("acme"))
    document = bench_document(example_documents(), rules + 1)
    document["name"] = "bench-extra-" + document["name"].split("-", 2)[2]
    compiled = compile_document(document, catalog)
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
