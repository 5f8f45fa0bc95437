"""The graph rules of a workflow (docs/definitions.md, "Workflows"), each problem at its JSON path.

Exactly one trigger node; unique node ids; connections between known nodes, none to itself, none
twice; no cycle (named, as a rule's ``depends_on`` cycles are); every node reachable from the trigger;
``when`` exactly on connections out of condition (``"true"``/``"false"``) and approval
(``approved``/``rejected``) nodes.

On a document pydantic refused in parts (:mod:`.partial`), nodes that did not parse still count as
known (a connection to one is not dangling, a trigger among them is not missing), and reachability is
not judged when a connection did not parse (the path through it is unknown).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

from rule_compiler.definitions.workflow import Connection, WorkflowDefinition
from rule_compiler.errors import Issue
from rule_compiler.validation.partial import WHOLE, Parts
from rule_compiler.validation.semantic import find_cycle

#: Node type → the ``when`` values of the connections out of it (the other types take none).
BRANCHES: Mapping[str, tuple[str, ...]] = {
    "condition": ("true", "false"),
    "approval": ("approved", "rejected"),
}


def check_graph(workflow: WorkflowDefinition, parts: Parts = WHOLE) -> list[Issue]:
    """Every graph problem of a structurally valid workflow (``parts``: what of it did not parse)."""
    unparsed = parts.dropped_names("nodes", "id")
    first: dict[str, int] = {}
    issues: list[Issue] = []
    for index, node in enumerate(workflow.nodes):
        if node.id in first:
            message = f"duplicate node id '{node.id}' (already used by nodes[{first[node.id]}])"
            issues.append(Issue(f"nodes[{index}].id", message, "duplicate"))
        else:
            first[node.id] = index
    triggers = [index for index, node in enumerate(workflow.nodes) if node.type == "trigger"]
    issues += _trigger_issues(workflow, triggers, "trigger" in parts.dropped_names("nodes", "type"))
    edges: dict[str, list[str]] = {name: [] for name in [*first, *sorted(unparsed)]}
    pairs: dict[tuple[str, str], int] = {}
    for index, connection in enumerate(workflow.connections):
        path = f"connections[{index}]"
        found = _connection_issues(connection, path, first, unparsed, pairs)
        issues += found
        if not found:
            pairs[(connection.from_, connection.to)] = index
            edges[connection.from_].append(connection.to)
        source = first.get(connection.from_)
        if source is not None:
            issues += _when_issues(connection, path, workflow.nodes[source].type)
    if cycle := find_cycle(edges):
        issues.append(
            Issue(
                "connections",
                f"cycle: {' -> '.join(cycle)} (each connects to the next); a workflow runs each node at "
                "most once, so remove one of these connections",
                "cycle",
            )
        )
    if triggers and parts.intact("connections"):
        issues += _unreachable(workflow, first, edges, workflow.nodes[triggers[0]].id)
    return issues


def _trigger_issues(workflow: WorkflowDefinition, triggers: list[int], trigger_unparsed: bool) -> list[Issue]:
    if not triggers:
        if trigger_unparsed:
            return []  # it is there, refused for its content (reported)
        return [
            Issue(
                "nodes",
                "a workflow needs exactly one trigger node (`type: trigger`), and this one has none",
                "missing_trigger",
            )
        ]
    first = workflow.nodes[triggers[0]].id
    return [
        Issue(
            f"nodes[{index}].type",
            f"a second trigger node: a workflow has exactly one, and '{first}' (nodes[{triggers[0]}]) is "
            "it; start another workflow, or make this node a condition on the first trigger's items",
            "duplicate_trigger",
        )
        for index in triggers[1:]
    ]


def _connection_issues(
    connection: Connection,
    path: str,
    known: Mapping[str, int],
    unparsed: set[str],
    pairs: Mapping[tuple[str, str], int],
) -> list[Issue]:
    """Dangling, self and duplicate connections (a connection with none of these is an edge)."""
    issues: list[Issue] = []
    for key, name in (("from", connection.from_), ("to", connection.to)):
        if name not in known and name not in unparsed:
            listed = ", ".join(known) or "none"
            message = f"unknown node '{name}' in `{key}`; the nodes of this workflow: {listed}"
            issues.append(Issue(f"{path}.{key}", message, "unknown_node"))
    if connection.from_ == connection.to:
        message = f"node '{connection.to}' cannot connect to itself"
        issues.append(Issue(f"{path}.to", message, "self_connection"))
    elif (pair := (connection.from_, connection.to)) in pairs:
        message = (
            f"duplicate connection from '{pair[0]}' to '{pair[1]}' (already connections[{pairs[pair]}]); "
            "two nodes are joined at most once"
        )
        issues.append(Issue(path, message, "duplicate"))
    return issues


def _when_issues(connection: Connection, path: str, source_type: str) -> list[Issue]:
    """``when`` present exactly on connections out of condition and approval nodes, with their values."""
    allowed = BRANCHES.get(source_type)
    where = f"{path}.when"
    if allowed is None:
        if connection.when is None:
            return []
        message = (
            f"only connections out of condition and approval nodes take `when`; '{connection.from_}' "
            f"is {'an' if source_type[0] in 'aeiou' else 'a'} {source_type} node, so all its items go "
            "this way: remove `when`"
        )
        return [Issue(where, message, "when")]
    choices = " or ".join(f'"{value}"' for value in allowed)
    if connection.when is None:
        message = (
            f"a connection out of {source_type} node '{connection.from_}' needs `when`: {choices} "
            "(which of its items go this way)"
        )
        return [Issue(where, message, "missing")]
    if connection.when not in allowed:
        message = (
            f"a connection out of {source_type} node '{connection.from_}' takes `when` {choices}, "
            f'not "{connection.when}"'
        )
        return [Issue(where, message, "when")]
    return []


def _unreachable(
    workflow: WorkflowDefinition, first: Mapping[str, int], edges: Mapping[str, list[str]], start: str
) -> list[Issue]:
    """Nodes no path of connections leads to from the trigger (other trigger nodes are reported)."""
    reached = {start}
    queue = deque([start])
    while queue:
        for target in edges.get(queue.popleft(), []):
            if target not in reached:
                reached.add(target)
                queue.append(target)
    return [
        Issue(
            f"nodes[{index}]",
            f"node '{name}' cannot be reached from the trigger '{start}': connect it from a node that "
            "can, or remove it",
            "unreachable",
        )
        for name, index in first.items()
        if name not in reached and workflow.nodes[index].type != "trigger"
    ]
