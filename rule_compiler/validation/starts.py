"""Actions that start another stored definition: ``trigger_workflow`` and ``generate_report``.

The target must be stored in the definition's organization (looked up by name only: another
organization's definitions are never in the stored names). A ``trigger_workflow`` target's trigger
must be ``manual``; a ``generate_report``'s parameters must be declared by the report, with values of
their types. A workflow starting workflows must not start itself again through them (A → B → A): the
cycle is named. What targets say comes from their stored source (:class:`CatalogRefs.stored_source`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from jinja2 import TemplateError

from rule_compiler.definitions import EventTrigger, GenerateReport, RuleDefinition, TriggerWorkflow
from rule_compiler.errors import Issue
from rule_compiler.templating import record_fields, template_strings
from rule_compiler.validation.refs import CatalogRefs

WORKFLOW = "workflow"
REPORT = "report"
#: Action type → the kind it starts (also the action's field naming the target).
_STARTED_KIND = {"trigger_workflow": WORKFLOW, "generate_report": REPORT}
#: The JSON types a report parameter's value may have, by the parameter's declared type.
_JSON_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "number": (int, float),
    "integer": int,
    "boolean": bool,
    "date": str,
}


def raw_actions(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The actions of a raw document: a rule's ``actions`` and a workflow's ``nodes[i].action``."""
    found = data.get("actions")
    actions = [a for a in found if isinstance(a, dict)] if isinstance(found, list) else []
    nodes = data.get("nodes")
    for node in nodes if isinstance(nodes, list) else []:
        if isinstance(node, dict) and isinstance(node.get("action"), dict):
            actions.append(node["action"])
    return actions


def started_by(actions: Iterable[Mapping[str, Any]]) -> set[tuple[str, str]]:
    """(kind, name) of every stored definition raw ``actions`` start (``(workflow, x)``, ``(report, y)``)."""
    refs: set[tuple[str, str]] = set()
    for action in actions:
        kind = _STARTED_KIND.get(str(action.get("type")))
        name = action.get(kind) if kind is not None else None
        if kind is not None and isinstance(name, str):
            refs.add((kind, name))
    return refs


def raw_trigger_type(source: Mapping[str, Any]) -> str | None:
    """The trigger type of a raw rule (``trigger.type``) or workflow (its trigger node's)."""
    trigger = source.get("trigger")
    nodes = source.get("nodes")
    for node in nodes if isinstance(nodes, list) else []:
        if isinstance(node, dict) and node.get("type") == "trigger":
            trigger = node.get("trigger")
            break
    kind = trigger.get("type") if isinstance(trigger, dict) else None
    return kind if isinstance(kind, str) else None


def check_start(
    rule: RuleDefinition, action: TriggerWorkflow | GenerateReport, path: str, refs: CatalogRefs
) -> list[Issue]:
    """An action starting a stored definition (of ``rule``, or a workflow node's shadow rule)."""
    issues: list[Issue] = []
    if isinstance(action, TriggerWorkflow):
        issues += _payload_issues(rule, action, path)
        if refs.stored_definition(WORKFLOW, action.workflow, f"{path}.workflow", issues):
            issues += _target_workflow_issues(action.workflow, f"{path}.workflow", refs)
    elif refs.stored_definition(REPORT, action.report, f"{path}.report", issues):
        issues += check_report_parameters(action.report, action.parameters, path, refs)
    return issues


def _payload_issues(rule: RuleDefinition, action: TriggerWorkflow, path: str) -> list[Issue]:
    """A payload is rendered once per started run; only an event's run has one row to read."""
    trigger = getattr(rule, "trigger", None)  # None: the trigger did not parse
    if trigger is None or isinstance(trigger, EventTrigger):
        return []
    issues = []
    for where, text in template_strings(action.payload, f"{path}.payload"):
        try:
            fields = record_fields(text)
        except TemplateError:
            continue  # reported by the template check
        if fields:
            issues.append(
                Issue(
                    where,
                    f"the payload reads record.{sorted(fields)[0]}, but it is rendered once per started "
                    "run, which carries every matched row's key (conf `keys`), not one row: read the rows "
                    "in the workflow instead (only an event trigger's run has one row)",
                    "template",
                )
            )
    return issues


def _target_workflow_issues(name: str, path: str, refs: CatalogRefs) -> list[Issue]:
    source = refs.stored_source(WORKFLOW, name, path)
    if isinstance(source, Issue):
        return [source]
    trigger = raw_trigger_type(source)
    if trigger == "manual":
        return []
    return [
        Issue(
            path,
            f"workflow '{name}' starts on its {trigger or 'unknown'} trigger; trigger_workflow starts only "
            "workflows whose trigger is manual: give it `trigger: {type: manual}` (a manual trigger may "
            "keep a `target`) or start another workflow",
            "reference",
        )
    ]


def check_report_parameters(
    report: str, parameters: Mapping[str, Any], path: str, refs: CatalogRefs
) -> list[Issue]:
    """``parameters`` (at ``path``.parameters) for the stored ``report`` (known to be stored): each
    declared by it, each value of its declared type (or null: the parameter is unset)."""
    if not parameters:
        return []
    source = refs.stored_source(REPORT, report, f"{path}.report")
    if isinstance(source, Issue):
        return [source]
    raw = source.get("parameters")
    declared = {
        str(p.get("name")): str(p.get("type"))
        for p in (raw if isinstance(raw, list) else [])
        if isinstance(p, dict)
    }
    issues: list[Issue] = []
    for name, value in parameters.items():
        where = f"{path}.parameters.{name}"
        if name not in declared:
            known = ", ".join(sorted(declared)) or "none"
            message = f"report '{report}' has no parameter '{name}' (its parameters: {known})"
            issues.append(Issue(where, message, "parameter"))
        elif value is not None and not _fits(declared[name], value):
            message = f"parameter '{name}' of report '{report}' is a {declared[name]}; {value!r} is not"
            hint = {"date": " (write YYYY-MM-DD)", "boolean": " (true or false)"}.get(declared[name], "")
            issues.append(Issue(where, message + hint, "value"))
    return issues


def _fits(kind: str, value: Any) -> bool:
    expected = _JSON_TYPES.get(kind)
    if expected is None or (isinstance(value, bool) and kind != "boolean"):
        return False
    if not isinstance(value, expected):
        return False
    if kind == "date":
        try:
            dt.date.fromisoformat(str(value))
        except ValueError:
            return False
    return True


def check_trigger_cycle(workflow: str, target: str, path: str, refs: CatalogRefs) -> list[Issue]:
    """A workflow ``workflow`` starting ``target``: refused when ``target`` starts ``workflow`` again,
    directly or through others (the stored workflows' ``trigger_workflow`` actions)."""
    cycle = _path_back(workflow, target, refs)
    if cycle is None:
        return []
    walk = " -> ".join([workflow, *cycle])
    return [
        Issue(
            path,
            f"starting workflow '{target}' closes a cycle across definitions: {walk} (each starts the next), "
            "so one run would start runs forever; remove one of these trigger_workflow actions",
            "cycle",
        )
    ]


def _path_back(workflow: str, target: str, refs: CatalogRefs) -> list[str] | None:
    """The workflows from ``target`` back to ``workflow`` (both included), or None: no way back."""
    previous: dict[str, str | None] = {target: None}
    frontier = [target]
    while frontier:
        current = frontier.pop(0)
        if current == workflow:
            walk = [current]
            while (before := previous[walk[-1]]) is not None:
                walk.append(before)
            return list(reversed(walk))
        for following in sorted(_starts(current, refs)):
            if following not in previous:
                previous[following] = current
                frontier.append(following)
    return None


def _starts(workflow: str, refs: CatalogRefs) -> set[str]:
    """The workflows a stored workflow starts (none when its source was not looked up)."""
    source = refs.stored_source(WORKFLOW, workflow, "")
    if isinstance(source, Issue):
        return set()
    return {name for kind, name in started_by(raw_actions(source)) if kind == WORKFLOW}
