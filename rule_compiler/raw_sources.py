"""What a stored definition's raw source says before any parsing: its trigger (a rule's ``trigger``, a
workflow's trigger node's). Imports nothing of ours, so the store, the kinds table and the REST view
all read it the same way."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def raw_trigger(source: Mapping[str, Any]) -> dict[str, Any] | None:
    """The trigger of a rule's source, or of a workflow's (first) trigger node; None without one."""
    nodes = source.get("nodes")
    if isinstance(nodes, list):
        start = next((n for n in nodes if isinstance(n, dict) and n.get("type") == "trigger"), {})
        trigger = start.get("trigger")
    else:
        trigger = source.get("trigger")
    return trigger if isinstance(trigger, dict) else None


def may_assign(source: Mapping[str, Any]) -> bool:
    """Whether a raw workflow may assign people: an approval node, or ``use`` of a template whose body
    may hold one (only then are the organization's members worth reading)."""
    nodes = source.get("nodes")
    listed = nodes if isinstance(nodes, list) else []
    return "use" in source or any(
        isinstance(node, dict) and node.get("type") == "approval" for node in listed
    )


def raw_trigger_type(source: Mapping[str, Any]) -> str:
    """The type of :func:`raw_trigger` ("" without a trigger or a type)."""
    trigger = raw_trigger(source)
    kind = trigger.get("type") if trigger is not None else None
    return kind if isinstance(kind, str) else ""
