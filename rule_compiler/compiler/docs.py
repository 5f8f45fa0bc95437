"""The rule rendered for humans, shown as the DAG's documentation in the Airflow UI."""

from __future__ import annotations

import json

from rule_compiler.definitions import (
    AllGroup,
    AnyGroup,
    Condition,
    ConditionNode,
    DataTrigger,
    EventTrigger,
    FieldRef,
    RuleDefinition,
    ScheduleTrigger,
    Trigger,
    UnexpandedTemplateError,
    UseTemplate,
)


def render_doc_md(rule: RuleDefinition) -> str:
    """Markdown: what starts the rule, when it matches, what it does."""
    lines = [f"### Rule `{rule.organization}/{rule.name}`", ""]
    if rule.description:
        lines += [_escape(rule.description), ""]
    if rule.owner:
        lines += [f"**Owner:** {_escape(rule.owner)}", ""]
    lines += [f"**Trigger:** {describe_trigger(rule.trigger)}", ""]
    lines += ["**Conditions:**", ""]
    lines += (
        _describe_node(rule.conditions, 0) if rule.conditions is not None else ["- always (no conditions)"]
    )
    lines += ["", "**Actions:**", ""]
    for number, action in enumerate(rule.actions, start=1):
        after = f" after {', '.join(f'`{d}`' for d in action.depends_on)}" if action.depends_on else ""
        target = getattr(action, "table", None) or getattr(action, "channel", None) or ""
        lines.append(
            f"{number}. `{action.id}`: {action.type.replace('_', ' ')}"
            f"{f' ({_escape(str(target))})' if target else ''}{after}; "
            f"retries {action.retries}, on failure: {action.on_failure}"
        )
    return "\n".join(lines) + "\n"


def describe_trigger(trigger: Trigger) -> str:
    """What starts a run, in a few words."""
    if isinstance(trigger, EventTrigger):
        fields = f" when {', '.join(trigger.fields)} change" if trigger.fields else ""
        return f"rows of `{trigger.table}` on `{trigger.connection}` {'/'.join(trigger.events)}{fields}"
    if isinstance(trigger, ScheduleTrigger):
        target = f", over rows of `{trigger.target.table}`" if trigger.target else ""
        return f"schedule `{trigger.cron}` ({trigger.timezone}){target}"
    if isinstance(trigger, DataTrigger):
        return (
            f"data check on `{trigger.connection}` every `{trigger.schedule}` ({trigger.timezone}), "
            f"check {trigger.check.operator}"
        )
    target = f", over rows of `{trigger.target.table}`" if trigger.target else ""
    return f"manual (REST or the Trigger button){target}"


def _describe_node(node: ConditionNode, depth: int) -> list[str]:
    pad = "  " * depth
    if isinstance(node, Condition):
        return [f"{pad}- {_describe_leaf(node)}"]
    if isinstance(node, AllGroup | AnyGroup):
        word, members = ("all of", node.all) if isinstance(node, AllGroup) else ("any of", node.any)
        return [f"{pad}- {word}:"] + [line for child in members for line in _describe_node(child, depth + 1)]
    if isinstance(node, UseTemplate):
        raise UnexpandedTemplateError(node)
    return [f"{pad}- not:", *_describe_node(node.not_, depth + 1)]


def _describe_leaf(leaf: Condition) -> str:
    if leaf.value is None:
        return f"`{leaf.field}` {leaf.operator.replace('_', ' ')}"
    value = (
        f"field `{leaf.value.field_ref}`"
        if isinstance(leaf.value, FieldRef)
        else _escape(json.dumps(leaf.value))
    )
    return f"`{leaf.field}` {leaf.operator.replace('_', ' ')} {value}"


def _escape(text: str) -> str:
    return text.replace("<", "&lt;").replace(">", "&gt;")
