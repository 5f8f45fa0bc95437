"""One run per item for a workflow that waits (a delay or an approval node; ADR 0011).

The run its trigger starts takes the items as any workflow run does, keeps the first and asks Airflow
for one run of the same DAG per other item, so each item waits on its own clock and for its own answer.
An item run's conf names its one item (``event_ids`` of an event, ``keys`` of a row) and the run that
started it (``item_of``); it starts no other run. Its id derives from the starting run and the item
(``item__<32 hex>``), so a retry of the starting task asks for the same runs and Airflow answers that
they exist.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from rule_compiler.canonical import canonical_json
from rule_engine.operators.trigger_workflow import start_run
from rule_engine.operators.workflow_items import LOGGED_KEYS, item_identity

#: The conf key naming the run that started an item run.
ITEM_OF = "item_of"
ITEM_RUN_PREFIX = "item__"


def is_item_run(conf: Mapping[str, Any]) -> bool:
    """Whether a run's conf says it carries one item another run handed it."""
    return isinstance(conf.get(ITEM_OF), str)


def item_run_id(dag_id: str, run_id: str, item: Any) -> str:
    """The run of ``item`` that run ``run_id`` of ``dag_id`` starts: the same in every try."""
    material = canonical_json([dag_id, run_id, item_identity(item)])
    return f"{ITEM_RUN_PREFIX}{hashlib.sha256(material.encode('utf-8')).hexdigest()[:32]}"


def item_conf(run_id: str, item: Any) -> dict[str, Any]:
    """An item run's conf: its event's id, or its row's key, and the run that started it."""
    if isinstance(item, Mapping) and "event_id" in item:
        return {"event_ids": [int(item["event_id"])], ITEM_OF: run_id}
    return {"keys": [item], ITEM_OF: run_id}


def planned(dag_id: str, run_id: str, items: Sequence[Any]) -> dict[str, Any]:
    """What the trace says of the item runs a run starts (the first ``LOGGED_KEYS`` by id)."""
    return {
        "kept": item_identity(items[0]),
        "item_runs": len(items) - 1,
        "runs": [item_run_id(dag_id, run_id, item) for item in items[1 : LOGGED_KEYS + 1]],
    }


def start_item_runs(dag_id: str, run_id: str, items: Sequence[Any]) -> dict[str, int]:
    """Ask Airflow for one run per item (through the task's supervisor); counts of started and
    already started runs. A failure is retryable: the task's retry asks again for the same runs."""
    counts = {"started": 0, "already_started": 0}
    for item in items:
        outcome = start_run(dag_id, item_run_id(dag_id, run_id, item), item_conf(run_id, item))
        counts[outcome] += 1
    return counts
