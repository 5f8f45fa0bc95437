"""A workflow's own node tasks: the condition (a branch task) and the join (ADR 0010).

The trigger node is a rule's ``evaluate_conditions`` without conditions, and action nodes are the
actions' operators; both live in their own modules. Each node here gathers the items its connections
delivered (:mod:`rule_engine.operators.workflow_items`), skips when none did, records its outcome per
item in the automation log (under its node id) and returns the items it passes on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from airflow.sdk import BaseBranchOperator
from pydantic import TypeAdapter

from rule_compiler.canonical import canonical_json
from rule_compiler.compiler import OUTCOME_TASK
from rule_compiler.conditions import compile_condition
from rule_compiler.definitions import ConditionNode, EventTrigger
from rule_compiler.runtime.idempotency import row_key
from rule_compiler.runtime.rows import iter_rows
from rule_compiler.runtime.run_events import evaluate_events
from rule_compiler.runtime.verdicts import VerdictLog
from rule_engine.hooks.app_database import AppDatabaseHook
from rule_engine.operators.base import NOTHING_ARRIVED, RuleTaskOperator
from rule_engine.operators.workflow_items import LOGGED_KEYS, item_identity, items_of, output_of

_CONDITION = TypeAdapter(ConditionNode)


class _Node(RuleTaskOperator):
    """What the workflow's own nodes share: gather the items or skip."""

    def record(self, arrived: Mapping[str, Any], output: dict[str, Any]) -> None:
        self.store.record_action(
            int(arrived["run_pk"]),
            self.task_id,
            status="success",
            output=output,
            started_at=self.attempt_started,
        )


class WorkflowConditionOperator(_Node, BaseBranchOperator):
    """Splits its items: those its conditions hold for go on along ``"true"``, the others ``"false"``.

    The SDK's ``BaseBranchOperator`` skips every task directly after it that it does not name, so a
    branch that receives no items is skipped, and what comes only after it too. ``record_outcome``
    (also directly after it) is always named.
    """

    ui_color = "#fff4d6"

    def execute(self, context: Any) -> dict[str, Any]:
        arrived = self.received(context, NOTHING_ARRIVED)
        items = items_of(arrived)
        held = self._held(context, arrived, items)
        passed = [item for item in items if item_identity(item) in held]
        failed = [item for item in items if item_identity(item) not in held]
        events = "matched_events" in arrived
        run_pk, spec_hash = int(arrived["run_pk"]), str(arrived["spec_hash"])
        branches = {
            "true": output_of(run_pk, spec_hash, passed, events=events),
            "false": output_of(run_pk, spec_hash, failed, events=events),
        }
        self.record(arrived, {"items": len(items), **_logged(branches)})
        self.log.info("%d of %d items go on along true, %d along false", len(passed), len(items), len(failed))
        targets = self.spec_params.get("branches") or {}
        follow = [OUTCOME_TASK]
        for when, output in branches.items():
            if output["matched_keys"]:
                follow += list(targets.get(when, []))
        output = {"run_pk": run_pk, "spec_hash": spec_hash, "branches": branches}
        # pushed first: skipping the branches that receive nothing ends this task's execution
        context["ti"].xcom_push(key="return_value", value=output)
        self.do_branch(context, follow)
        return output

    def _held(self, context: Any, arrived: Mapping[str, Any], items: list[Any]) -> set[str]:
        """The identities of the items the conditions hold for (the same evaluator as a rule's)."""
        params = self.spec_params
        source = params.get("row_source")
        node = _CONDITION.validate_python(params["conditions"])
        compiled = compile_condition(node, column_types=source["types"] if source else None)
        now = self.run_time(context)
        verdicts = VerdictLog(values=False)
        if "matched_events" in arrived and source is not None:
            engine = AppDatabaseHook(source["connection"]).engine
            ids = [int(item["event_id"]) for item in items]
            trigger = EventTrigger.model_validate(params["trigger"])
            matched, _ = evaluate_events(
                engine, ids, trigger, source=source, compiled=compiled, now=now, verdicts=verdicts
            )
            held = {item_identity(item) for item in matched}
        else:
            rows = self._rows(source, [item for item in items if item is not None])
            held = set()
            for item in items:
                row = rows.get(canonical_json(item), {}) if item is not None else {}
                explained = compiled.explain(row, now=now, values=False)
                if not verdicts.full:
                    verdicts.add(f"row {canonical_json(item)}", explained)
                if explained["matched"]:
                    held.add(item_identity(item))
        for entry in verdicts.lines(len(items)):
            self.log.info("%s", entry)
        return held

    @staticmethod
    def _rows(source: Mapping[str, Any] | None, keys: list[Any]) -> dict[str, dict[str, Any]]:
        if source is None or not keys:
            return {}
        with AppDatabaseHook(source["connection"]).engine.connect() as conn:
            return {row_key(row, source["primary_key"]): row for row in iter_rows(conn, source, keys)}


class WorkflowJoinOperator(_Node):
    """Goes on with the union of the items that arrived on its connections (each item once)."""

    ui_color = "#f1f3f4"

    def execute(self, context: Any) -> dict[str, Any]:
        arrived = self.received(context, NOTHING_ARRIVED)
        items = items_of(arrived)
        self.record(arrived, {"items": len(items), "keys": _keys(items)})
        self.log.info("%d items arrived; all go on", len(items))
        return arrived


def _keys(items: Iterable[Any]) -> list[str]:
    return [item_identity(item) for item in list(items)[:LOGGED_KEYS]]


def _logged(branches: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Per branch, how many items went that way and the first keys (the trace of the path)."""
    return {
        when: {"count": len(items_of(output)), "keys": _keys(items_of(output))}
        for when, output in branches.items()
    }
