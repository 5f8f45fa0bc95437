"""Build every stored automation's DAG for Airflow's DAG processor (and only one at task start).

One query reads the compiled specs; a last-known-good snapshot serves them when the store is down;
a spec that cannot be rendered becomes a placeholder DAG that shows the error, and never hides the
others. Nothing here compiles definitions: that happened at registration. A spec larger than
registration allows (:data:`~rule_compiler.canonical.MAX_SPEC_BYTES`: stored before the limit, or
written around it) is not parsed: it becomes a placeholder too.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from airflow.sdk import DAG, get_parsing_context

from rule_compiler.canonical import MAX_SPEC_BYTES
from rule_compiler.compiler import DagSpec
from rule_compiler.settings import snapshot_path
from rule_compiler.store.snapshot import load_specs
from rule_engine.render import render_dag, render_error_dag

if TYPE_CHECKING:
    from rule_compiler.store import RuleStore

log = logging.getLogger("rule_engine.loader")


def build_dags(store: RuleStore | None = None) -> dict[str, DAG]:
    """Every loadable spec rendered, keyed by dag_id; only the requested one while a task starts."""
    requested = get_parsing_context().dag_id
    load = load_specs(store, snapshot_path(), requested)
    if load.source == "snapshot":
        log.error(
            "rule store unreachable (%s); serving %d specs from the last-known-good snapshot",
            load.error,
            len(load.specs),
        )
    elif load.source == "empty":
        log.error(
            "rule store unreachable and no usable snapshot (%s); no automation DAGs this parse", load.error
        )
    dags: dict[str, DAG] = {}
    for row in load.specs:
        dags[row.dag_id] = _render_one(row.dag_id, row.spec_json, row.spec_hash, row.pool)
    return dags


def _render_one(dag_id: str, spec_json: str, spec_hash: str, pool: str | None = None) -> DAG:
    size = len(spec_json.encode("utf-8"))
    if size > MAX_SPEC_BYTES:
        log.error(
            "automation spec %s is %d bytes (limit %d); serving a placeholder DAG",
            dag_id,
            size,
            MAX_SPEC_BYTES,
        )
        return render_error_dag(
            dag_id,
            f"the stored spec is {size:,} bytes, over the {MAX_SPEC_BYTES:,}-byte limit: register the "
            "definition again (smaller) to replace it",
        )
    try:
        spec = DagSpec.model_validate_json(spec_json)
        if spec.dag_id != dag_id:
            raise ValueError(f"spec names dag_id '{spec.dag_id}', stored as '{dag_id}'")
        return render_dag(spec, spec_hash, pool=pool)
    except Exception as exc:  # one bad spec must never break the file: show it, loudly
        log.exception("automation spec %s could not be rendered; serving a placeholder DAG", dag_id)
        return render_error_dag(dag_id, f"the stored spec could not be rendered: {_describe(exc)}")


def _describe(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:500]


def publish(namespace: dict[str, Any], store: RuleStore | None = None) -> int:
    """Put the DAGs into a DAG file's globals (where Airflow collects them); returns how many."""
    dags = build_dags(store)
    for dag_id, dag in dags.items():
        namespace[f"automation_dag__{dag_id}"] = dag
    return len(dags)
