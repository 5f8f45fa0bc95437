"""``kind: workflow``: one trigger node, then condition, action, delay, approval, report and join nodes
joined by connections (docs/definitions.md, "Workflows").

Items flow along connections: a condition node splits them between its ``"true"`` and ``"false"``
connections, an approval node sends them all ``approved`` or ``rejected``. Positions are for the
visual designer and never change behaviour. The graph's rules (one trigger, known ids, no cycle, ...)
are meaning checks: :mod:`rule_compiler.validation.workflow_checks`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import Discriminator, Field, Tag

from rule_compiler.definitions.action_steps import ActionStep
from rule_compiler.definitions.common import (
    FailureAlerts,
    ReportArguments,
    Slug,
    StrictModel,
    Title,
    is_none,
    tag_of,
)
from rule_compiler.definitions.conditions import ConditionNode
from rule_compiler.definitions.rule import SCHEMA_VERSION
from rule_compiler.definitions.trigger_types import Trigger

MAX_NODES = 200
MAX_CONNECTIONS = 1_000
#: How far from the origin a node may be drawn, either way on each axis.
MAX_COORDINATE = 100_000
NodeType = Literal["trigger", "condition", "action", "delay", "approval", "report", "join"]
NODE_TYPES: tuple[str, ...] = get_args(NodeType)
#: A connection's ``when``: the branch of a condition (``"true"``/``"false"``) or an approval.
When = Literal["true", "false", "approved", "rejected"]
Coordinate = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=-MAX_COORDINATE, le=MAX_COORDINATE)]


class Position(StrictModel):
    """Where the visual designer draws a node: finite numbers within ±100,000."""

    x: Coordinate
    y: Coordinate


class NodeBase(StrictModel):
    """Fields every node has: its id (the task id) and where it is drawn."""

    id: Slug
    position: Position | None = Field(default=None, exclude_if=is_none)


class TriggerNode(NodeBase):
    """What starts a run: the same trigger types and fields as a rule's trigger."""

    type: Literal["trigger"]
    trigger: Trigger


class ConditionStep(NodeBase):
    """Splits its items: those its conditions hold for go on ``"true"`` connections, the rest ``"false"``."""

    type: Literal["condition"]
    conditions: ConditionNode


class ActionNode(NodeBase):
    """Acts once per item it receives with any action of the registry (its id is the node's)."""

    type: Literal["action"]
    action: ActionStep


class DelayNode(NodeBase):
    """Pauses the run for a ``duration`` (``2d``) or ``until`` a moment (a template): one of them."""

    type: Literal["delay"]
    duration: str | None = Field(default=None, max_length=20, exclude_if=is_none)
    until: str | None = Field(default=None, max_length=1_000, exclude_if=is_none)


class ApprovalNode(NodeBase):
    """Asks people to approve; its items go on ``approved`` or ``rejected`` connections.

    ``subject`` and ``body`` are templates over the item's row, rendered in our sandbox; ``assignees``
    are user names of members of the workflow's organization (who may answer); ``timeout`` ends the
    wait with ``on_timeout``.
    """

    type: Literal["approval"]
    subject: str = Field(min_length=1, max_length=1_000)
    body: str | None = Field(default=None, max_length=4_000, exclude_if=is_none)
    assignees: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(min_length=1, max_length=50)
    timeout: str = Field(max_length=20, description="a duration such as 1d")
    on_timeout: Literal["approved", "rejected"] = "rejected"


class ReportNode(NodeBase):
    """Runs a stored report of the organization for the workflow's interval (ADR 0010)."""

    type: Literal["report"]
    report: Slug
    parameters: ReportArguments = Field(default_factory=dict)


class JoinNode(NodeBase):
    """Waits for every connection into it that can still deliver; goes on with the union of its items."""

    type: Literal["join"]


def _node_kind(value: Any) -> str | None:
    return tag_of(value, "type", "#")


WorkflowNode = Annotated[
    (
        Annotated[TriggerNode, Tag("#trigger")]
        | Annotated[ConditionStep, Tag("#condition")]
        | Annotated[ActionNode, Tag("#action")]
        | Annotated[DelayNode, Tag("#delay")]
        | Annotated[ApprovalNode, Tag("#approval")]
        | Annotated[ReportNode, Tag("#report")]
        | Annotated[JoinNode, Tag("#join")]
    ),
    Discriminator(_node_kind),
]


class Connection(StrictModel):
    """An edge: items of ``from`` go to ``to``; ``when`` says which branch of a condition or approval."""

    from_: Slug = Field(alias="from")
    to: Slug
    when: When | None = Field(default=None, exclude_if=is_none)


class WorkflowDefinition(StrictModel):
    """A workflow as its author wrote it, after structural validation."""

    schema_version: Literal[1] = SCHEMA_VERSION
    kind: Literal["workflow"]
    name: Slug
    organization: Slug
    title: Title | None = Field(
        default=None, exclude_if=is_none, description="the DAG's name in the Airflow UI (default: the name)"
    )
    description: str = Field(default="", max_length=4_000)
    owner: str | None = Field(default=None, max_length=200)
    alerts: FailureAlerts | None = Field(
        default=None,
        exclude_if=is_none,
        description="failure-rate alerts to the owner (default: the deployment's)",
    )
    active: bool = True
    tags: list[Slug] = Field(default_factory=list, max_length=20)
    nodes: list[WorkflowNode] = Field(min_length=1, max_length=MAX_NODES)
    connections: list[Connection] = Field(default_factory=list, max_length=MAX_CONNECTIONS)
