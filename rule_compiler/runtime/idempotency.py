"""Idempotency keys: from (definition, event or run, action, row), never try number or version.

See docs/architecture.md §3.5 and ADR 0003. The definition part of a key names the kind for every
kind but ``rule`` (ADR 0010): a rule and a workflow of the same name, with an action and a node of the
same id, have different keys for the same event, while every rule key stays what it always was.
"""

from __future__ import annotations

import hashlib
from typing import Any

from rule_compiler.canonical import canonical_json
from rule_compiler.store.report_runs import GENERATED_RUN_PREFIX

#: The kind whose keys carry no kind: rule keys predate the other kinds and must never change.
RULE_KIND = "rule"


def key_values(row: Any, primary_key: list[str]) -> list[Any]:
    """A row's primary-key values as JSON-safe values (decimals, dates as text)."""
    return [_plain(row[column]) for column in primary_key]


def row_key(row: Any, primary_key: list[str]) -> str:
    """A row's stable key text: its primary-key values as canonical JSON (``[42]``)."""
    return canonical_json(key_values(row, primary_key))


def definition_part(definition_id: str, kind: str = RULE_KIND) -> str:
    """What a key says of its definition: a rule's id as it is (``acme/x``), any other kind's id after
    its kind (``workflow:acme/x``), which no rule id (two slugs joined by ``/``) can equal."""
    return definition_id if kind == RULE_KIND else f"{kind}:{definition_id}"


def idempotency_key(
    rule_id: str, occurrence_id: str, action_id: str, key_of_row: str | None, *, kind: str = RULE_KIND
) -> str:
    """64 hex characters naming one effect; equal inputs give equal keys in every process.

    ``rule_id``: the definition's id (``org/name``); ``kind``: its kind (a workflow's ``action_id`` is
    the node id).
    """
    material = canonical_json([definition_part(rule_id, kind), occurrence_id, action_id, key_of_row])
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)


#: The prefix of a run started by ``trigger_workflow`` (ADR 0010).
TRIGGERED_RUN_PREFIX = "triggered__"


def triggered_run_id(effect_key: str) -> str:
    """The id of the run a ``trigger_workflow`` effect starts: ``triggered__`` and the first 32 hex
    characters of its idempotency key, so a retry asks for the same run (ADR 0010)."""
    return f"{TRIGGERED_RUN_PREFIX}{effect_key[:32]}"


def generated_run_id(effect_key: str) -> str:
    """The report run a ``generate_report`` effect (or a workflow's report node) makes: ``generated__``
    and the first 32 hex characters of its key, one per action and occurrence (ADR 0010)."""
    return f"{GENERATED_RUN_PREFIX}{effect_key[:32]}"


def generated_delivery_key(effect_key: str, index: int) -> str:
    """The key of delivery ``index`` of a generated report run: the effect's key with the destination's
    index (never the report's own ``["report", id, interval end, index]``), 64 hex characters."""
    return hashlib.sha256(canonical_json([effect_key, index]).encode("utf-8")).hexdigest()
