"""The workflow tester: the path one event would take through a workflow, acting on nothing.

``rule-compiler test-workflow WF.yaml --event EVENT.json`` and ``POST /workflows/{name}/test`` are thin
shells around :func:`test_workflow`, which takes a validated, expanded workflow
(``validate_document(...).workflow``). It simulates ADR 0010's semantics for the one item the event becomes:

- the **trigger** takes the event as the rule tester's does (:func:`~rule_compiler.rule_tester.trigger_row`:
  an event trigger's table, operations and ``fields``; a ``target``'s table, ``new`` as its row); a
  data trigger, or one without a target, gives one item without a row (the event is not read);
- nodes are visited in topological order (ties in the order the workflow lists them); a node that
  receives nothing is **skipped**; a node with several connections into it goes on when any delivered;
- a **condition** node explains its tree on the item (the rule tester's evaluator, trace and
  ``related`` foreign-key reads) and sends it along its ``"true"`` or ``"false"`` connections;
- an **action** node *would act*: its fields with their templates rendered in the sandbox over the
  item's row; a template that cannot render would fail the action (permanent failure), and only
  ``on_failure: continue`` then passes the item on;
- a **delay** node says how long it would wait; an **approval** node renders its subject and, always,
  follows its ``approved`` connections (a test cannot ask anyone); a **report** node would run its report.

Nothing is written, sent or started; ``related`` only reads.
"""

from __future__ import annotations

import heapq
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from jinja2 import TemplateError

from rule_compiler.catalog import Catalog
from rule_compiler.conditions import compile_condition
from rule_compiler.conditions.trace import format_trace
from rule_compiler.conditions.values import json_safe
from rule_compiler.definitions import DataTrigger, Event, EventTrigger
from rule_compiler.definitions.common import FIELD_PATH_SEPARATOR
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
from rule_compiler.rule_tester import (
    RelatedReader,
    RelatedRequest,
    TriggerRow,
    connection_of,
    evaluate_on_row,
    read_paths,
    trigger_row,
    unknown_keys,
)
from rule_compiler.templating import TemplateCheckError, record_fields, render_value, template_strings

__all__ = ["APPROVAL_BRANCH", "NodeStep", "WorkflowTestResult", "format_workflow_text", "test_workflow"]

#: The branch an approval node follows in a test (no one can be asked).
APPROVAL_BRANCH = "approved"
#: How many characters of one rendered value the text output shows.
MAX_SHOWN = 120
PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"
_MARKS = {PASSED: "✓", FAILED: "✗", SKIPPED: "-"}


@dataclass(frozen=True)
class NodeStep:
    """What one node would do: ``status`` passed/failed/skipped, the ``branch`` it sends the item along
    (conditions and approvals), the nodes it would reach (``next``), and a one-line ``summary``."""

    id: str
    type: str
    status: str
    summary: str
    branch: str | None = None
    next: tuple[str, ...] = ()
    trace: dict[str, Any] | None = None
    action: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "status": self.status,
            "branch": self.branch,
            "next": list(self.next),
            "summary": self.summary,
            "trace": self.trace,
            "action": json_safe(self.action) if self.action is not None else None,
        }


@dataclass(frozen=True)
class WorkflowTestResult:
    """What :func:`test_workflow` found: whether the event starts a run, and every node's step in order."""

    __test__ = False  # not a pytest test class

    workflow_id: str
    started: bool
    reason: str
    steps: tuple[NodeStep, ...]
    event: dict[str, Any] = field(default_factory=dict)
    record: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def acted(self) -> list[str]:
        """The action nodes that would act on the item."""
        return [step.id for step in self.steps if step.type == "action" and step.status == PASSED]

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe: ``{"workflow", "started", "reason", "event", "record", "nodes", "acted", "notes"}``."""
        return {
            "workflow": self.workflow_id,
            "started": self.started,
            "reason": self.reason,
            "event": json_safe(self.event),
            "record": json_safe(self.record),
            "nodes": [step.as_dict() for step in self.steps],
            "acted": self.acted,
            "notes": list(self.notes),
        }


def test_workflow(
    workflow: WorkflowDefinition,
    event: Event,
    *,
    catalog: Catalog,
    related: RelatedReader | None = None,
    now: datetime,
) -> WorkflowTestResult:
    """The path ``event`` takes through ``workflow`` (validated against ``catalog``, templates expanded)."""
    walk = _Walk(workflow, event, catalog, related, now)
    return walk.run()


test_workflow.__test__ = False  # type: ignore[attr-defined]  # not a pytest test function


class _Walk:
    """One item through the graph: which connections deliver it, node by node."""

    def __init__(
        self,
        workflow: WorkflowDefinition,
        event: Event,
        catalog: Catalog,
        related: RelatedReader | None,
        now: datetime,
    ) -> None:
        self.workflow, self.event, self.catalog, self.related, self.now = (
            workflow,
            event,
            catalog,
            related,
            now,
        )
        self.workflow_id = f"{workflow.organization}/{workflow.name}"
        self.summary: dict[str, Any] = {"table": event.table, "operation": event.operation}
        self.notes: list[str] = []
        self.row: TriggerRow | None = None
        self.values: dict[str, Any] = {}
        self.delivered: set[str] = set()  # node ids the item reached
        self.from_event = False  # the item is an event's: templates read old, changes and event

    def run(self) -> WorkflowTestResult:
        trigger = next(node for node in self.workflow.nodes if isinstance(node, TriggerNode))
        reason = self._start(trigger)
        started = not reason.startswith("not triggered")
        steps = []
        for node in _in_order(self.workflow):
            if node is trigger:
                status = PASSED if started else FAILED
                steps.append(self._pass_on(node, status, reason))
            elif node.id not in self.delivered:
                steps.append(NodeStep(node.id, node.type, SKIPPED, "skipped: receives nothing"))
            else:
                steps.append(self._step(node))
        return WorkflowTestResult(
            self.workflow_id,
            started,
            reason,
            tuple(steps),
            self.summary,
            self.values,
            tuple(dict.fromkeys(self.notes)),  # each note once, though several nodes found it
        )

    def _start(self, node: TriggerNode) -> str:
        """Why the run starts (the item's row set) or ``not triggered: ...``."""
        trigger = node.trigger
        if isinstance(trigger, DataTrigger) or (
            not isinstance(trigger, EventTrigger) and getattr(trigger, "target", None) is None
        ):
            self.notes.append(f"a {trigger.type} trigger gives one item without a row: the event is not read")
            return f"a {trigger.type} run starts with one item without a row"
        row = trigger_row(trigger, self.event, self.summary, self.notes, noun="workflow")
        if isinstance(row, str):
            return row
        self.row, self.values = row, dict(row.record)
        self.from_event = isinstance(trigger, EventTrigger)
        self.notes += unknown_keys(self.values, self.catalog, row)
        if isinstance(trigger, EventTrigger):
            return f"the event fits the trigger: {self.event.operation} on {trigger.table}"
        return f"`new` is one row of the target {row.table}"

    def _step(self, node: WorkflowNode) -> NodeStep:
        if isinstance(node, ConditionStep):
            return self._condition(node)
        if isinstance(node, ActionNode):
            return self._action(node)
        if isinstance(node, DelayNode):
            wait = (
                f"delay {node.duration}" if node.duration is not None else f"until {self._text(node.until)}"
            )
            return self._pass_on(node, PASSED, f"waits ({wait})")
        if isinstance(node, ApprovalNode):
            return self._approval(node)
        if isinstance(node, ReportNode):
            parameters = f" with {_shown(node.parameters)}" if node.parameters else ""
            return self._pass_on(node, PASSED, f"would run report {node.report}{parameters}")
        assert isinstance(node, JoinNode)  # noqa: S101 - the last node type
        return self._pass_on(node, PASSED, "goes on: an input delivered")

    def _condition(self, node: ConditionStep) -> NodeStep:
        if self.row is None:  # validation refuses conditions without a row; evaluated on nothing
            explained = compile_condition(node.conditions).explain({}, now=self.now)
        else:
            explained, found = evaluate_on_row(
                node.conditions,
                self.row,
                self.values,
                catalog=self.catalog,
                related=self.related,
                now=self.now,
            )
            self.notes += found
        held = bool(explained["matched"])
        branch = "true" if held else "false"
        summary = "the conditions hold" if held else "the conditions do not hold"
        return self._pass_on(
            node, PASSED if held else FAILED, summary, branch=branch, trace=explained["node"]
        )

    def _action(self, node: ActionNode) -> NodeStep:
        step = node.action
        fields = step.model_dump(mode="json", by_alias=True, exclude_defaults=True)
        fields["type"] = getattr(step, "type")  # noqa: B009 - step models are built at run time
        where = fields.pop("where", None)
        try:
            rendered = self._render(fields)
        except (TemplateError, TemplateCheckError) as exc:
            failure = f"would fail: a template could not be rendered: {exc}"
            if getattr(step, "on_failure", "fail") == "continue":
                return self._pass_on(node, FAILED, f"{failure} (on_failure: continue, so it goes on)")
            return NodeStep(node.id, node.type, FAILED, failure, action=fields)
        if where is not None:
            rendered["where"] = where
        shown = ", ".join(f"{k} {_shown(v)}" for k, v in rendered.items() if k not in {"type", "where"})
        rows = " on the rows `where` selects" if where is not None else ""
        return self._pass_on(node, PASSED, f"would {rendered['type']}{rows}: {shown}", action=rendered)

    def _approval(self, node: ApprovalNode) -> NodeStep:
        summary = (
            f"asks approval of {', '.join(node.assignees)}: {self._text(node.subject)} (timeout "
            f"{node.timeout}, then {node.on_timeout}); this test follows `{APPROVAL_BRANCH}`"
        )
        return self._pass_on(node, PASSED, summary, branch=APPROVAL_BRANCH)

    def _pass_on(
        self,
        node: WorkflowNode,
        status: str,
        summary: str,
        *,
        branch: str | None = None,
        trace: dict[str, Any] | None = None,
        action: dict[str, Any] | None = None,
    ) -> NodeStep:
        """The node's step; the item goes along its connections (those of ``branch`` when given)."""
        reached: tuple[str, ...] = ()
        if not (node.type == "trigger" and status == FAILED):
            reached = tuple(
                c.to
                for c in self.workflow.connections
                if c.from_ == node.id and (branch is None or c.when == branch)
            )
        self.delivered.update(reached)
        return NodeStep(node.id, node.type, status, summary, branch, reached, trace, action)

    def _render(self, value: Any) -> Any:
        """``value`` with its templates rendered over the item (foreign-key paths read as conditions do)."""
        if self.row is None:
            return render_value(value, {"record": {}, **self._context()})
        wanted = {name for _, text in template_strings(value, "") for name in record_fields(text)}
        connection = connection_of(self.catalog, self.row)
        request = RelatedRequest(self.row.connection_id, connection, self.row.table, self.row.record, ())
        self.notes += read_paths(self.values, wanted, self.related, request)
        missing = sorted(name for name in wanted - self.values.keys() if FIELD_PATH_SEPARATOR not in name)
        if missing:
            self.notes.append(f"not in the event's row, so NULL in templates: {', '.join(missing)}")
        record = {**dict.fromkeys(wanted), **self.values}  # what the run's row read would give
        return render_value(value, {"record": record, **self._context()})

    def _text(self, text: str | None) -> str:
        """A template rendered and shown, or why it cannot render (the node would fail at run time)."""
        try:
            return _shown(self._render(text))
        except (TemplateError, TemplateCheckError) as exc:
            return f"(cannot render {_shown(text)}: {exc}; the node would fail)"

    def _context(self) -> dict[str, Any]:
        """The names templates read besides ``record``, as an action's run gives them."""
        context: dict[str, Any] = {"rule": {"id": self.workflow_id}, "run": {"id": "test"}}
        if self.from_event:
            event = self.event
            old, new = event.old or {}, event.new or {}
            context["old"] = old
            context["changes"] = {
                name: {"old": old.get(name), "new": new.get(name)} for name in event.changed()
            }
            context["event"] = {"id": event.id, "operation": event.operation, "table": event.table}
        return context


def _in_order(workflow: WorkflowDefinition) -> list[WorkflowNode]:
    """The nodes in topological order; among the nodes ready at once, the workflow's own order first."""
    index = {node.id: i for i, node in enumerate(workflow.nodes)}
    waiting = dict.fromkeys(index, 0)
    for connection in workflow.connections:
        waiting[connection.to] += 1
    ready = [i for node_id, i in index.items() if waiting[node_id] == 0]
    heapq.heapify(ready)
    order: list[WorkflowNode] = []
    while ready:
        node = workflow.nodes[heapq.heappop(ready)]
        order.append(node)
        for connection in workflow.connections:
            if connection.from_ == node.id:
                waiting[connection.to] -= 1
                if waiting[connection.to] == 0:
                    heapq.heappush(ready, index[connection.to])
    return order


def _shown(value: Any) -> str:
    """A value as JSON, cut at :data:`MAX_SHOWN` characters."""
    text = json.dumps(json_safe(value), ensure_ascii=False, default=str)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 1] + "…"


def format_workflow_text(result: WorkflowTestResult) -> str:
    """One line per node in order: ``✓``/``✗``/``-``, the node, the branch taken and what it would do."""
    event = result.event
    head = f"workflow {result.workflow_id}, event {event.get('operation')} on {event.get('table')}"
    if event.get("changed") is not None:
        head += f" (changed: {', '.join(event['changed']) or 'nothing'})"
    lines = [head]
    for step in result.steps:
        branch = f" → {step.branch}" if step.branch is not None else ""
        lines.append(f"{_MARKS[step.status]} {step.id} ({step.type}){branch}: {step.summary}")
        if step.trace is not None:
            lines += format_trace(step.trace, 2)
    lines += [f"note: {note}" for note in result.notes]
    if not result.started:
        lines.append(f"NOT STARTED: {result.reason}")
    elif result.acted:
        lines.append(f"WOULD ACT: {', '.join(result.acted)} (a test: nothing was done)")
    else:
        lines.append("NO ACTION: no action node would act (a test: nothing was done)")
    return "\n".join(lines)
