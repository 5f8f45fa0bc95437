"""Lowering of a workflow: each node one task (its id the task id), each connection a DAG edge (ADR 0010).

A valid, expanded ``WorkflowDefinition`` (``Validated.workflow``) becomes a deterministic ``DagSpec``:

- the trigger node → ``workflow_start`` (a data trigger adds the ``wait_for_data`` gate before it): it
  turns the run's trigger into items, as a rule's ``evaluate_conditions`` does without conditions;
- a condition node → ``workflow_condition``, a branch task; its ``branches`` name the tasks each of
  ``"true"`` and ``"false"`` leads to;
- an action node → the action's own task kind, with a rule action's params;
- a join → ``workflow_join``; a report node → ``workflow_report``; a delay node → ``workflow_delay``
  (a deferrable wait) and an approval node → ``workflow_approval`` (Airflow's human-in-the-loop);
  a workflow with either runs one item per run (``per_item`` on its trigger node's task, ADR 0011);
- ``record_outcome`` after every node (``all_done``), as for rules.

Every node task carries ``inputs``: the ``[from, when]`` of each connection into it, read at run time to
gather the items that arrived. A node with more than one incoming connection (a join, or any node
that two branches reach) runs when at least one parent delivered and none failed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from rule_compiler.canonical import content_hash
from rule_compiler.catalog import Catalog
from rule_compiler.compiler.docs import describe_trigger
from rule_compiler.compiler.ir import DagSpec, ScheduleSpec, TaskSpec
from rule_compiler.compiler.lower import (
    COMPILER_VERSION,
    DATA_SENSOR_TASK,
    OUTCOME_TASK,
    TASK_DISPLAY_NAMES,
    action_params,
    dag_display_name,
    dag_id_for,
    dag_tags,
    data_sensor_task,
    row_source_plan,
    schedule_of,
)
from rule_compiler.conditions.durations import parse_duration
from rule_compiler.definitions import Action, DataTrigger, EventTrigger, ScheduleTrigger
from rule_compiler.definitions.action_steps import as_action
from rule_compiler.definitions.workflow import (
    ActionNode,
    ApprovalNode,
    ConditionStep,
    DelayNode,
    JoinNode,
    ReportNode,
    TriggerNode,
    WorkflowDefinition,
    WorkflowNode,
)
from rule_compiler.errors import CompileError
from rule_compiler.notification_templates import TemplateRef

WORKFLOW_KIND = "workflow"
#: Node types that wait (for a time, for an answer): a workflow with one runs one item per run.
WAITING_NODE_TYPES = frozenset({"delay", "approval"})
#: Retries of each node type's own task (action nodes take their action's).
NODE_RETRIES: Mapping[str, int] = {"trigger": 2, "condition": 2, "report": 2, "delay": 2, "approval": 1}
#: The trigger rule of a node more than one connection leads into (a join's rule; ADR 0010).
MERGING_TRIGGER_RULE = "none_failed_min_one_success"
#: Node type → the task kind of nodes without their own registry kind (actions take theirs).
NODE_TASK_KINDS: Mapping[str, str] = {
    "trigger": "workflow_start",
    "condition": "workflow_condition",
    "join": "workflow_join",
    "report": "workflow_report",
    "delay": "workflow_delay",
    "approval": "workflow_approval",
}


def compile_workflow(
    workflow: WorkflowDefinition,
    catalog: Catalog,
    *,
    notification_refs: Mapping[str, TemplateRef] | None = None,
) -> DagSpec:
    """Lower a validated, expanded workflow. Pure and deterministic: same input, same bytes."""
    trigger_node = _trigger_node(workflow)
    trigger = trigger_node.trigger
    definition_id = f"{workflow.organization}/{workflow.name}"
    actions = [_action(node) for node in workflow.nodes if isinstance(node, ActionNode)]
    trees = [node.conditions for node in workflow.nodes if isinstance(node, ConditionStep)]
    row_source = row_source_plan(trigger, trees, actions, catalog, waiting_texts(workflow))
    lowering = _Lowering(workflow, definition_id, catalog, row_source, notification_refs or {})
    tasks = [data_sensor_task(definition_id, trigger)] if isinstance(trigger, DataTrigger) else []
    tasks += [lowering.task(node) for node in workflow.nodes]
    tasks.append(lowering.outcome_task(trigger_node.id))
    source = workflow.model_dump(mode="json", by_alias=True, exclude_defaults=False)
    return DagSpec(
        compiler_version=COMPILER_VERSION,
        dag_id=dag_id_for(WORKFLOW_KIND, workflow.organization, workflow.name),
        rule_id=definition_id,
        organization=workflow.organization,
        kind=WORKFLOW_KIND,
        name=workflow.name,
        display_name=dag_display_name(workflow.title, workflow.organization, workflow.name),
        description=workflow.description,
        owner=workflow.owner,
        active=workflow.active,
        tags=dag_tags(workflow.organization, trigger.type, workflow.tags, "workflow"),
        schedule=_schedule(workflow, trigger),
        doc_md=workflow_doc_md(workflow),
        source_hash=content_hash(source),
        tasks=tuple(tasks),
    )


def _action(node: ActionNode) -> Action:
    """The registry action an action node stands for (its id the node's)."""
    return cast(Action, as_action(node.action, node.id))


def _trigger_node(workflow: WorkflowDefinition) -> TriggerNode:
    triggers = [node for node in workflow.nodes if isinstance(node, TriggerNode)]
    if len(triggers) != 1:
        raise CompileError(f"workflow '{workflow.name}' has {len(triggers)} trigger nodes; validate first")
    return triggers[0]


def _schedule(workflow: WorkflowDefinition, trigger: Any) -> ScheduleSpec:
    """A schedule trigger runs on the interval timetable when a report node reads the run's interval
    (ADR 0010); otherwise as a rule with that trigger."""
    if isinstance(trigger, ScheduleTrigger) and any(isinstance(n, ReportNode) for n in workflow.nodes):
        return ScheduleSpec(kind="interval", cron=trigger.cron, timezone=trigger.timezone)
    return schedule_of(trigger)


class _Lowering:
    """One workflow's node tasks: the edges, the row source and the notification templates they share."""

    def __init__(
        self,
        workflow: WorkflowDefinition,
        definition_id: str,
        catalog: Catalog,
        row_source: dict[str, Any] | None,
        refs: Mapping[str, TemplateRef],
    ) -> None:
        self.workflow = workflow
        self.definition_id = definition_id
        self.catalog = catalog
        self.row_source = row_source
        self.refs = refs
        self.trigger = _trigger_node(workflow).trigger
        self.inputs: dict[str, list[list[str]]] = {node.id: [] for node in workflow.nodes}
        self.branches: dict[str, dict[str, list[str]]] = {}
        for connection in workflow.connections:
            self.inputs[connection.to].append([connection.from_, connection.when or ""])
            if connection.when is not None:
                targets = self.branches.setdefault(connection.from_, {})
                targets.setdefault(connection.when, []).append(connection.to)

    def common(self, node: WorkflowNode) -> dict[str, Any]:
        return {
            "rule_id": self.definition_id,
            "definition_kind": WORKFLOW_KIND,
            "inputs": self.inputs[node.id],
        }

    def task(self, node: WorkflowNode) -> TaskSpec:
        upstream = tuple(sorted({parent for parent, _ in self.inputs[node.id]}))
        if isinstance(node, TriggerNode) and isinstance(node.trigger, DataTrigger):
            upstream = (DATA_SENSOR_TASK,)
        merging = len(self.inputs[node.id]) > 1 or isinstance(node, JoinNode)
        base: dict[str, Any] = {
            "task_id": node.id,
            "upstream": upstream,
            "trigger_rule": MERGING_TRIGGER_RULE if merging else "all_success",
        }
        if isinstance(node, ActionNode):
            action = _action(node)
            params = action_params(
                action,
                self.catalog,
                self.row_source,
                self.refs.get(node.id),
                event_rule=isinstance(self.trigger, EventTrigger),
            )
            return TaskSpec(
                **base,
                display_name=f"{action.type}: {node.id}",
                kind=action.type,
                params={**self.common(node), "action_id": node.id, **params},
                retries=action.retries,
                timeout_seconds=action.timeout,
                on_failure=action.on_failure,
            )
        kind = NODE_TASK_KINDS[node.type]
        return TaskSpec(
            **base,
            display_name=f"{node.type}: {node.id}",
            kind=kind,
            params={**self.common(node), **self._node_params(node)},
            retries=NODE_RETRIES.get(node.type, 0),
            timeout_seconds=600,
        )

    def _node_params(self, node: WorkflowNode) -> dict[str, Any]:
        if isinstance(node, TriggerNode):
            trigger = node.trigger.model_dump(mode="json", exclude_none=True)
            params: dict[str, Any] = {"trigger": trigger, "conditions": None, "row_source": self.row_source}
            if is_waiting(self.workflow):
                params["per_item"] = True
            return params
        if isinstance(node, ConditionStep):
            return {
                "conditions": node.conditions.model_dump(mode="json", by_alias=True, exclude_none=True),
                "branches": self._branches(node.id),
                **self._item_source(),
            }
        if isinstance(node, ReportNode):
            return {"report": node.report, "parameters": dict(node.parameters)}
        if isinstance(node, DelayNode):
            wait = (
                {"duration_seconds": int(parse_duration(node.duration).total_seconds())}
                if node.duration is not None
                else {"until": node.until}
            )
            return {**wait, **self._item_source()}
        if isinstance(node, ApprovalNode):
            return {
                "subject": node.subject,
                "body": node.body,
                "assignees": list(node.assignees),
                "timeout_seconds": int(parse_duration(node.timeout).total_seconds()),
                "on_timeout": node.on_timeout,
                "branches": self._branches(node.id),
                **self._item_source(),
            }
        return {}

    def _branches(self, node_id: str) -> dict[str, list[str]]:
        """The tasks each branch (``when``) of a condition or approval node leads to."""
        return {when: sorted(ids) for when, ids in sorted(self.branches.get(node_id, {}).items())}

    def _item_source(self) -> dict[str, Any]:
        """What a condition or waiting node reads its items' rows with."""
        trigger = self.trigger.model_dump(mode="json", exclude_none=True)
        return {"row_source": self.row_source, "trigger": trigger}

    def outcome_task(self, start_task: str) -> TaskSpec:
        # a report node fails the run when its report fails, as an action with on_failure: fail
        actions = [
            {"id": n.id, "on_failure": n.action.on_failure if isinstance(n, ActionNode) else "fail"}  # type: ignore[attr-defined]
            for n in self.workflow.nodes
            if isinstance(n, ActionNode | ReportNode)
        ]
        return TaskSpec(
            task_id=OUTCOME_TASK,
            display_name=TASK_DISPLAY_NAMES[OUTCOME_TASK],
            kind="record_outcome",
            params={
                "rule_id": self.definition_id,
                "definition_kind": WORKFLOW_KIND,
                "start_task": start_task,
                "actions": actions,
            },
            upstream=tuple(sorted(node.id for node in self.workflow.nodes)),
            retries=2,
            timeout_seconds=120,
            trigger_rule="all_done",
        )


def is_waiting(workflow: WorkflowDefinition) -> bool:
    """Whether the workflow has a node that waits (so each of its runs carries one item)."""
    return any(node.type in WAITING_NODE_TYPES for node in workflow.nodes)


def waiting_texts(workflow: WorkflowDefinition) -> list[str]:
    """The templates of the waiting nodes (a delay's ``until``, an approval's subject and body)."""
    texts: list[str] = []
    for node in workflow.nodes:
        if isinstance(node, DelayNode) and node.until is not None:
            texts.append(node.until)
        elif isinstance(node, ApprovalNode):
            texts += [text for text in (node.subject, node.body) if text is not None]
    return texts


def workflow_doc_md(workflow: WorkflowDefinition) -> str:
    """Markdown for the DAG's documentation: what starts the workflow and what each node does."""
    lines = [f"### Workflow `{workflow.organization}/{workflow.name}`", ""]
    if workflow.description:
        lines += [workflow.description.replace("<", "&lt;"), ""]
    trigger = _trigger_node(workflow).trigger
    lines += [f"**Trigger:** {describe_trigger(trigger)}", "", "**Nodes:**", ""]
    for node in workflow.nodes:
        what = node.action.type.replace("_", " ") if isinstance(node, ActionNode) else node.type  # type: ignore[attr-defined]
        lines.append(f"- `{node.id}`: {what}")
    lines += ["", "**Connections:**", ""]
    for connection in workflow.connections:
        when = f" ({connection.when})" if connection.when else ""
        lines.append(f"- `{connection.from_}` → `{connection.to}`{when}")
    return "\n".join(lines) + "\n"


__all__ = [
    "DATA_SENSOR_TASK",
    "NODE_TASK_KINDS",
    "WAITING_NODE_TYPES",
    "compile_workflow",
    "is_waiting",
    "workflow_doc_md",
]
