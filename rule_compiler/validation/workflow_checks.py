"""The meaning checks of a ``kind: workflow``: its graph (:mod:`.workflow_graph`) and every node's config.

Nodes reuse parts of a rule, and are checked as one: each trigger, condition and action node is put
into a rule of its own with the workflow's trigger (a condition node's tree as its ``conditions``, an
action node's action as its one action, with the node's id), which :func:`check_rule_kind` checks as
it checks any rule (condition templates expanded, notification templates resolved, tables, columns,
fields, templates and URLs against the catalog). Its problems are moved to the node's path:
``conditions…`` to ``nodes[1].conditions…``, ``actions[0]…`` to ``nodes[3].action…``; the trigger is
checked once, at the trigger node. Delay, approval and report nodes are checked here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rule_compiler.addresses import is_user_name
from rule_compiler.conditions.durations import DurationError, parse_duration
from rule_compiler.definitions import RuleDefinition, Trigger, TriggerWorkflow
from rule_compiler.definitions.action_steps import as_action, as_step
from rule_compiler.definitions.workflow import (
    ActionNode,
    ApprovalNode,
    ConditionStep,
    DelayNode,
    ReportNode,
    TriggerNode,
    WorkflowDefinition,
    WorkflowNode,
)
from rule_compiler.errors import Issue
from rule_compiler.notification_templates import TemplateRef
from rule_compiler.validation.kind_checks import CheckContext, Validated, check_rule_kind, organization_issues
from rule_compiler.validation.partial import WHOLE, Parts
from rule_compiler.validation.refs import CatalogRefs
from rule_compiler.validation.semantic import check_record_references, check_templates
from rule_compiler.validation.starts import check_report_parameters, check_trigger_cycle
from rule_compiler.validation.workflow_graph import check_graph


def check_workflow_kind(
    definition: Any, context: CheckContext, parts: Parts
) -> tuple[list[Issue], Validated]:
    """A workflow: the graph rules, then every node's config as the rule checks it reuses say."""
    assert isinstance(definition, WorkflowDefinition)  # noqa: S101 - the kinds table routes workflows here
    if issues := organization_issues(definition.organization, context.catalog):
        return issues, Validated(definition)
    checked = _Nodes(definition, context, parts)
    issues = check_graph(definition, parts) + checked.issues
    expanded = definition.model_copy(update={"nodes": checked.expanded}) if not issues else None
    return issues, Validated(
        definition, notification_refs=checked.refs, warnings=tuple(checked.warnings), workflow=expanded
    )


@dataclass
class _Nodes:
    """Every node's config checked, with what the lowering needs: each node as expanded, the notification
    templates action nodes use (by node id), and the trigger's warnings."""

    workflow: WorkflowDefinition
    context: CheckContext
    parts: Parts
    issues: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)
    refs: dict[str, TemplateRef] = field(default_factory=dict)
    expanded: list[WorkflowNode] = field(default_factory=list)

    def __post_init__(self) -> None:
        workflow = self.workflow
        stored = self.context.stored
        self.catalog_refs = CatalogRefs(workflow.organization, self.context.catalog, stored=stored)
        start = next((i for i, node in enumerate(workflow.nodes) if isinstance(node, TriggerNode)), None)
        #: The workflow's trigger (its first trigger node's), as far as it parsed: what gives a run its row.
        self.trigger = self._trigger_of(start) if start is not None else _Trigger(None, parsed=False)
        self.expanded = [self._node(index, node) for index, node in enumerate(workflow.nodes)]

    def _trigger_of(self, index: int) -> _Trigger:
        node = self.workflow.nodes[index]
        assert isinstance(node, TriggerNode)  # noqa: S101 - called for trigger nodes only
        parsed = self.parts.parsed(f"nodes[{index}].trigger")
        return _Trigger(node.trigger, parsed, parsed and self.parts.intact(f"nodes[{index}].trigger.target"))

    def _node(self, index: int, node: WorkflowNode) -> WorkflowNode:
        path = f"nodes[{index}]"
        if isinstance(node, TriggerNode):
            self._check_as_rule(self._trigger_of(index).rule(self.workflow), path, own_trigger=True)
        elif isinstance(node, ConditionStep):
            rule = self._check_as_rule(self.trigger.rule(self.workflow, conditions=node.conditions), path)
            if rule.conditions is not None:
                return node.model_copy(update={"conditions": rule.conditions})
        elif isinstance(node, ActionNode):
            action = as_action(node.action, node.id)
            if isinstance(action, TriggerWorkflow):
                where, refs = f"{path}.action.workflow", self.catalog_refs
                self.issues += check_trigger_cycle(self.workflow.name, action.workflow, where, refs)
            where_parsed = self.parts.parsed(f"{path}.action.where")
            rule = self._check_as_rule(self.trigger.rule(self.workflow, action, where_parsed), path)
            if rule.actions:
                return node.model_copy(update={"action": as_step(rule.actions[0])})
        elif isinstance(node, DelayNode):
            self._check_delay(node, path)
        elif isinstance(node, ApprovalNode):
            self._check_approval(node, path)
        elif isinstance(node, ReportNode) and self._stored("report", node.report, f"{path}.report"):
            self.issues += check_report_parameters(node.report, node.parameters, path, self.catalog_refs)
        return node

    def _stored(self, kind: str, name: str, path: str) -> bool:
        return self.catalog_refs.stored_definition(kind, name, path, self.issues)

    def _check_as_rule(
        self, shadow: tuple[RuleDefinition, Parts], path: str, *, own_trigger: bool = False
    ) -> RuleDefinition:
        """Check a node's rule as a rule, keep its problems at the node's ``path``; the rule as expanded."""
        rule, parts = shadow
        found, validated = check_rule_kind(rule, self.context, parts)
        for issue in found:
            if (moved := _at_node(issue, path, own_trigger)) is not None:
                self.issues.append(moved)
        for warning in validated.warnings:
            if (moved := _at_node(warning, path, own_trigger)) is not None:
                self.warnings.append(moved)
        self.refs.update(validated.notification_refs)
        return validated.rule or rule

    def _check_delay(self, node: DelayNode, path: str) -> None:
        if (node.duration is None) == (node.until is None):
            message = "give `duration` (such as 2d) or `until` (a moment, such as '{{ record.due_at }}'), one"
            self.issues.append(Issue(path, message, "delay"))
        if node.duration is not None:
            self._check_duration(node.duration, f"{path}.duration")
        if node.until is not None:
            self._check_texts(node.until, f"{path}.until")

    def _check_approval(self, node: ApprovalNode, path: str) -> None:
        self._check_duration(node.timeout, f"{path}.timeout")
        for key in ("subject", "body"):
            if getattr(node, key) is not None:
                self._check_texts(getattr(node, key), f"{path}.{key}")
        self._check_assignees(node.assignees, f"{path}.assignees")

    def _check_assignees(self, assignees: list[str], path: str) -> None:
        """User names of members of the workflow's organization, each once (who may answer)."""
        members = self.context.members
        organization = self.workflow.organization
        seen: set[str] = set()
        for index, name in enumerate(assignees):
            where = f"{path}[{index}]"
            if not is_user_name(name):
                message = f"{name[:80]!r} is not a user name: an assignee is a member's Airflow user name"
                self.issues.append(Issue(where, message, "assignee"))
            elif name in seen:
                self.issues.append(Issue(where, f"'{name}' is assigned twice", "assignee"))
            elif members is not None and name not in members:
                message = (
                    f"'{name}' is not a member of organization '{organization}': only members may answer "
                    f"an approval (add the membership first: PUT /automations/api/v1/memberships/{name})"
                )
                self.issues.append(Issue(where, message, "assignee"))
            seen.add(name)
        if members is None:
            message = "assignees not checked against the organization's members here: registration does"
            self.warnings.append(Issue(path, message, "assignee"))

    def _check_duration(self, text: str, path: str) -> None:
        try:
            parse_duration(text)
        except DurationError as exc:
            self.issues.append(Issue(path, str(exc), "duration"))

    def _check_texts(self, value: object, path: str) -> None:
        """Templates that render safely, reading only fields of the trigger's row (when it is known)."""
        self.issues += check_templates(value, path)
        if self.trigger.row_known:
            rule, _ = self.trigger.rule(self.workflow)
            found = check_record_references(rule, value, path, self.catalog_refs)
            self.issues += [_reworded(issue) for issue in found]


@dataclass(frozen=True)
class _Trigger:
    """A trigger node's trigger, whether it parsed, and whether the row it gives a run is known."""

    trigger: Trigger | None
    parsed: bool
    row_known: bool = False

    def rule(
        self,
        workflow: WorkflowDefinition,
        action: Any = None,
        where_parsed: bool = True,
        *,
        conditions: Any = None,
    ) -> tuple[RuleDefinition, Parts]:
        """A rule of this trigger and one part of ``workflow`` (a condition tree or an action), and what
        of it did not parse, as the rule checks ask (:class:`~rule_compiler.validation.partial.Parts`)."""
        removed: set[tuple[str | int, ...]] = set()
        if not self.parsed:
            removed.add(("trigger",))
        elif not self.row_known:
            removed.add(("trigger", "target"))
        if not where_parsed:
            removed.add(("actions", 0, "where"))
        parts = Parts({"trigger": {}, "actions": [{}]}, frozenset(removed)) if removed else WHOLE
        fields: dict[str, Any] = {  # no trigger when it did not parse: `parts` says so
            "kind": "rule",
            "name": workflow.name,
            "organization": workflow.organization,
            "trigger": self.trigger if self.parsed else None,
            "conditions": conditions,
            "actions": [action] if action is not None else [],
        }
        return RuleDefinition.model_construct(**fields), parts


def _at_node(issue: Issue, path: str, own_trigger: bool) -> Issue | None:
    """A problem of a node's rule at the node's path; None for the trigger's, unless it is the node's."""
    for prefix, there in (("trigger", "trigger"), ("conditions", "conditions"), ("actions[0]", "action")):
        if issue.path == prefix or issue.path.startswith((f"{prefix}.", f"{prefix}[")):
            if prefix == "trigger" and not own_trigger:
                return None  # checked once, at the trigger node
            return _reworded(Issue(f"{path}.{there}{issue.path[len(prefix) :]}", issue.message, issue.code))
    return _reworded(Issue(path, issue.message, issue.code))


def _reworded(issue: Issue) -> Issue:
    """The rule checks' messages, as said of a workflow."""
    return Issue(issue.path, issue.message.replace("this rule", "this workflow"), issue.code)
