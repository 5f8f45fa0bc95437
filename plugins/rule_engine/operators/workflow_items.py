"""How items travel between a workflow's node tasks (ADR 0010): as keys, in XCom, never as rows.

Every node task returns what a rule's ``evaluate_conditions`` returns: ``run_pk``, ``spec_hash`` and
``matched_keys`` (row keys; ``[None]`` for one item without a row), plus ``matched_events``
(``{"event_id", "key"}``) when the trigger is an event. A condition node returns one such list per
branch under ``branches``. A node reads the lists of the connections into it (its ``inputs``:
``[from, when]``) and goes on with their union: each item once, in the order of its inputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rule_compiler.canonical import canonical_json

#: How many item keys a node's automation-log entry lists (its counts are always whole).
LOGGED_KEYS = 50


def items_of(output: Mapping[str, Any]) -> list[Any]:
    """The items of a node's output: its events when the trigger is an event, else its row keys."""
    if "matched_events" in output:
        return list(output["matched_events"])
    return list(output.get("matched_keys") or [])


def output_of(run_pk: int, spec_hash: str, items: Sequence[Any], *, events: bool) -> dict[str, Any]:
    """A node's output passing ``items`` on (the format ``ActionOperator.matches`` reads)."""
    output: dict[str, Any] = {"run_pk": run_pk, "spec_hash": spec_hash}
    if events:
        output["matched_events"] = list(items)
        output["matched_keys"] = [item["key"] for item in items]
    else:
        output["matched_keys"] = list(items)
    return output


def item_identity(item: Any) -> str:
    """What makes two items one: the event id of an event item, else the row key."""
    if isinstance(item, Mapping) and "event_id" in item:
        return f"event:{item['event_id']}"
    return canonical_json(item)


def gather(ti: Any, inputs: Sequence[Sequence[str]]) -> dict[str, Any] | None:
    """The union of what the connections into a node delivered; None when nothing arrived (the node is
    then skipped). A parent that was skipped delivered nothing."""
    union: dict[str, Any] = {}
    first: Mapping[str, Any] | None = None
    events = False
    for parent, when in inputs:
        output = ti.xcom_pull(task_ids=parent)
        if not isinstance(output, Mapping):
            continue
        first = first or output
        part = output.get("branches", {}).get(when) if when else output
        if not isinstance(part, Mapping):
            continue
        events = events or "matched_events" in part
        for item in items_of(part):
            union.setdefault(item_identity(item), item)
    if first is None or not union:
        return None
    return output_of(int(first["run_pk"]), str(first["spec_hash"]), list(union.values()), events=events)
