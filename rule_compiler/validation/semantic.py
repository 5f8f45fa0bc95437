"""Semantic validation of a rule: meaning, not shape (references, the action graph, the catalog).

The checks also run on the parts of a rule that parse when others do not (:mod:`.partial`): each asks
:class:`~rule_compiler.validation.partial.Parts` whether what it needs was removed and skips only then.
"""

from __future__ import annotations

import re

from jinja2 import TemplateError

from rule_compiler.catalog import Catalog, Connection, FieldResolutionError, Table, resolve_field
from rule_compiler.conditions import validate_operand
from rule_compiler.definitions import (
    CallWebhook,
    Condition,
    ConditionNode,
    CreateRecord,
    DataTrigger,
    DeleteRecord,
    EventTrigger,
    FieldRef,
    GenerateReport,
    ParamRef,
    RuleDefinition,
    SendNotification,
    TriggerWorkflow,
    UpdateRecord,
)
from rule_compiler.definitions.conditions import MAX_CONDITION_DEPTH, depth_of, iter_leaves, template_uses
from rule_compiler.errors import Issue
from rule_compiler.netpolicy import url_problem
from rule_compiler.templating import TemplateCheckError, check_template, record_fields, template_strings
from rule_compiler.validation.partial import WHOLE, Parts
from rule_compiler.validation.refs import CatalogRefs, StoredNames
from rule_compiler.validation.starts import check_start
from rule_compiler.validation.trigger_checks import check_trigger

#: Jinja markup in a ``url``: replaced by a plain word before the static URL check (the send-time
#: guard checks the rendered URL again; a templated host is checked there only).
_TEMPLATE_MARKUP = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)
#: Task ids the compiler uses itself; action ids may not take them.
RESERVED_ACTION_IDS = frozenset({"evaluate_conditions", "record_outcome", "render_error", "wait_for_data"})


def check_rule(
    rule: RuleDefinition, catalog: Catalog | None, parts: Parts = WHOLE, *, stored: StoredNames | None = None
) -> list[Issue]:
    """Every semantic problem of a structurally valid rule (``parts``: what of it did not parse).

    ``stored``: the names of the organization's stored definitions by kind, for the actions that start
    one (:class:`~rule_compiler.validation.refs.CatalogRefs`).
    """
    refs = CatalogRefs(rule.organization, catalog, stored=stored)
    issues = _check_action_graph(rule, parts.dropped_names("actions", "id"))
    # the row a run is about comes from the trigger: checks of fields and of the triggering row need it
    row_known = parts.parsed("trigger") and parts.intact("trigger.target")
    if parts.parsed("trigger"):
        issues += check_trigger(rule, refs)
    if row_known:
        issues += _check_conditions(rule, refs)
    for index in range(len(rule.actions)):
        issues += _check_action(rule, index, refs, row_known and parts.parsed(f"actions[{index}].where"))
        if row_known:
            issues += _check_record_references(rule, index, refs)
    return issues


def _check_record_references(rule: RuleDefinition, index: int, refs: CatalogRefs) -> list[Issue]:
    """Every ``{{ record.x }}`` an action's templates read must be a field of the triggering row."""
    data = rule.actions[index].model_dump(mode="json", by_alias=True, exclude_none=True)
    return check_record_references(rule, data, f"actions[{index}]", refs)


def check_record_references(rule: RuleDefinition, value: object, path: str, refs: CatalogRefs) -> list[Issue]:
    """Every ``{{ record.x }}`` the texts in ``value`` (at ``path``) read must be a field of the row
    ``rule``'s trigger gives a run."""
    source = _row_source(rule)
    scratch: list[Issue] = []
    found = refs.table(source[0], source[1], "trigger.table", scratch) if source is not None else None
    issues: list[Issue] = []
    for where, text in template_strings(value, path):
        try:
            fields = record_fields(text)
        except TemplateError:
            continue  # a template that does not parse is reported by the template check
        for field in sorted(fields):
            if source is None:
                issues.append(
                    Issue(
                        where,
                        f"the template reads record.{field}, but this rule's trigger has "
                        "no row (no event and no target)",
                        "template",
                    )
                )
            elif found is not None and (problem := _field_problem(found[0], source[1], field)):
                issues.append(Issue(where, f"the template reads record.{field}: {problem}", "template"))
    return issues


def _field_problem(connection: Connection, table: str, field: str) -> str | None:
    try:
        resolve_field(connection, table, field)
    except FieldResolutionError as exc:
        return str(exc)
    return None


def _check_action_graph(rule: RuleDefinition, unparsed: set[str]) -> list[Issue]:
    """Reserved and duplicate ids, ``depends_on`` naming an action of the rule, no cycle.

    ``unparsed``: ids of actions that did not parse: a dependency on one is not unknown.
    """
    issues: list[Issue] = []
    first_index: dict[str, int] = {}
    for index, action in enumerate(rule.actions):
        if action.id in RESERVED_ACTION_IDS:
            issues.append(Issue(f"actions[{index}].id", f"'{action.id}' is reserved; choose another id"))
        if action.id in first_index:
            issues.append(
                Issue(
                    f"actions[{index}].id",
                    f"duplicate action id '{action.id}' (already used by actions[{first_index[action.id]}])",
                    "duplicate",
                )
            )
        else:
            first_index[action.id] = index
    for index, action in enumerate(rule.actions):
        for position, dependency in enumerate(action.depends_on):
            path = f"actions[{index}].depends_on[{position}]"
            if dependency == action.id:
                issues.append(Issue(path, f"action '{action.id}' cannot depend on itself", "cycle"))
            elif dependency not in first_index and dependency not in unparsed:
                issues.append(
                    Issue(
                        path,
                        f"unknown action '{dependency}' in depends_on; actions in this rule: "
                        f"{', '.join(first_index)}",
                        "unknown_dependency",
                    )
                )
    cycle = find_cycle({a.id: [d for d in a.depends_on if d in first_index] for a in rule.actions})
    if cycle:
        issues.append(
            Issue(
                "actions",
                f"dependency cycle: {' -> '.join(cycle)} (each depends on the next); remove one of these "
                "depends_on entries",
                "cycle",
            )
        )
    return issues


def find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """One cycle of the graph as a closed walk (``a -> b -> a``), or None. Self-loops are ignored."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in graph.get(node, []):
            if nxt == node:
                continue
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if state.get(nxt) is None and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if state.get(node) is None and (found := visit(node)):
            return found
    return None


def _row_source(rule: RuleDefinition) -> tuple[str, str] | None:
    """(connection, table) of the row a run is about: the event's table or the target's."""
    trigger = rule.trigger
    if isinstance(trigger, EventTrigger):
        return trigger.connection, trigger.table
    target = getattr(trigger, "target", None)
    return (target.connection, target.table) if target is not None else None


def _check_conditions(rule: RuleDefinition, refs: CatalogRefs) -> list[Issue]:
    if rule.conditions is None:
        return []
    source = _row_source(rule)
    if source is None:
        hint = (
            "data triggers test their query with `check`"
            if isinstance(rule.trigger, DataTrigger)
            else "add `trigger.target: {connection, table}` to select rows"
        )
        return [
            Issue(
                "conditions",
                f"conditions need a row to test, and this {rule.trigger.type} trigger has none; {hint}",
            )
        ]
    return check_condition_tree(rule.conditions, "conditions", source, refs, rule.trigger.type)


def check_condition_tree(
    node: ConditionNode, path: str, source: tuple[str, str], refs: CatalogRefs, trigger_type: str
) -> list[Issue]:
    """Check an expanded condition tree (rule conditions or an action's ``where``) against one table.

    A tree still holding a ``use`` (its template could not be expanded, which was reported) is skipped.
    """
    issues: list[Issue] = []
    if template_uses(node, path):
        return []
    if depth_of(node) > MAX_CONDITION_DEPTH:
        return [Issue(path, f"conditions nest deeper than {MAX_CONDITION_DEPTH} levels; flatten the groups")]
    scratch: list[Issue] = []
    found = refs.table(source[0], source[1], "trigger.table", scratch)
    for leaf_path, leaf in iter_leaves(node, path):
        if param_issues := _param_ref_issues(leaf, leaf_path):
            issues += param_issues
            continue
        column_type = None
        if found is not None:
            column_type = _resolve(found[0], source[1], leaf.field, f"{leaf_path}.field", issues)
            if isinstance(leaf.value, FieldRef):
                _resolve(found[0], source[1], leaf.value.field_ref, f"{leaf_path}.value.field_ref", issues)
        issues += _operand_issues(leaf, leaf_path, column_type, trigger_type)
    return issues


def _param_ref_issues(leaf: Condition, path: str) -> list[Issue]:
    """``{param: x}`` outside a condition template (in a template, expansion has replaced them all)."""
    message = "`{param: ...}` is only allowed inside a condition_template"
    if isinstance(leaf.value, ParamRef):
        return [Issue(f"{path}.value", message, "param")]
    if isinstance(leaf.value, list):
        return [
            Issue(f"{path}.value[{i}]", message, "param")
            for i, item in enumerate(leaf.value)
            if isinstance(item, ParamRef)
        ]
    return []


def _resolve(connection: Connection, table: str, field: str, path: str, issues: list[Issue]) -> str | None:
    try:
        return resolve_field(connection, table, field).column.type
    except FieldResolutionError as exc:
        issues.append(Issue(path, str(exc), "unknown_field"))
        return None


def _operand_issues(leaf: Condition, path: str, column_type: str | None, trigger_type: str) -> list[Issue]:
    found = validate_operand(leaf, column_type=column_type, trigger_type=trigger_type)
    return [Issue(f"{path}.{suffix}" if suffix else path, message, "operand") for suffix, message in found]


def check_templates(value: object, path: str) -> list[Issue]:
    """Every text in ``value`` (at ``path``) must be a template our sandbox renders safely."""
    issues = []
    for where, text in template_strings(value, path):
        try:
            check_template(text)
        except TemplateCheckError as exc:
            issues.append(Issue(where, str(exc), "template"))
    return issues


def _check_action(rule: RuleDefinition, index: int, refs: CatalogRefs, row_known: bool) -> list[Issue]:
    """One action's problems; ``row_known``: the triggering row's table is known (the trigger parsed)
    and so is the action's ``where`` when it has one, so an action without one may be told apart."""
    action = rule.actions[index]
    path = f"actions[{index}]"
    issues: list[Issue] = []
    if isinstance(action, CreateRecord | UpdateRecord | DeleteRecord):
        issues += _check_record_action(rule, action, path, refs, row_known)
    elif isinstance(action, SendNotification):
        issues += _check_notification(action, path, refs)
    elif isinstance(action, CallWebhook):
        issues += _check_webhook(action, path, refs)
    elif isinstance(action, TriggerWorkflow | GenerateReport):
        issues += check_start(rule, action, path, refs)
        issues += check_templates(getattr(action, "payload", None), f"{path}.payload")
    return issues


def _check_record_action(
    rule: RuleDefinition,
    action: CreateRecord | UpdateRecord | DeleteRecord,
    path: str,
    refs: CatalogRefs,
    row_known: bool,
) -> list[Issue]:
    issues: list[Issue] = []
    found = refs.table(action.connection, action.table, f"{path}.table", issues)
    values = getattr(action, "values", {})
    if found is not None:
        table = found[1]
        if not table.writable:
            issues.append(Issue(f"{path}.table", f"table '{action.table}' is read-only in the catalog"))
        unknown = [c for c in values if c not in table.columns]
        if unknown:
            issues.append(
                Issue(
                    f"{path}.values",
                    f"unknown column{'s' if len(unknown) > 1 else ''} "
                    f"{', '.join(repr(c) for c in unknown)} in table '{action.table}' "
                    f"(its columns: {', '.join(sorted(table.columns))})",
                    "unknown_column",
                )
            )
        if isinstance(action, UpdateRecord):
            for column in values:
                if column in table.primary_key:
                    issues.append(Issue(f"{path}.values", f"primary key column '{column}' cannot be updated"))
        if isinstance(action, CreateRecord) and action.upsert_on:
            issues += _check_upsert(action, table, path)
        if isinstance(action, DeleteRecord) and action.soft and table.soft_delete_column is None:
            issues.append(
                Issue(
                    f"{path}.soft",
                    f"table '{action.table}' has no soft-delete column in the "
                    "catalog; set `soft_delete_column` there or use a hard delete",
                )
            )
    where = getattr(action, "where", None)
    if where is not None:
        issues += check_condition_tree(
            where, f"{path}.where", (action.connection, action.table), refs, "where"
        )
    elif (
        row_known
        and not isinstance(action, CreateRecord)
        and _row_source(rule) != (action.connection, action.table)
    ):
        issues.append(
            Issue(
                f"{path}.table",
                f"{action.type} without `where` acts on the triggering row, but "
                f"this rule's rows come from {_describe_source(rule)}; add `where` to choose rows "
                f"of '{action.table}'",
            )
        )
    issues += check_templates(values, f"{path}.values")
    return issues


def _check_upsert(action: CreateRecord, table: Table, path: str) -> list[Issue]:
    upsert_on = list(action.upsert_on or [])
    missing = [c for c in upsert_on if c not in action.values]
    if missing:
        return [
            Issue(
                f"{path}.upsert_on",
                f"upsert_on column{'s' if len(missing) > 1 else ''} {', '.join(repr(c) for c in missing)} "
                "must also be given in `values` (they identify the row to update)",
            )
        ]
    if not table.is_unique_key(upsert_on):
        keys = [table.primary_key, *table.unique_keys]
        known = "; ".join("(" + ", ".join(k) + ")" for k in keys if k) or "none"
        return [
            Issue(
                f"{path}.upsert_on",
                f"({', '.join(upsert_on)}) is not a unique key of table '{action.table}' in the catalog "
                f"(its unique keys: {known}); run `rule-compiler catalog sync` if the database has one",
            )
        ]
    return []


def _describe_source(rule: RuleDefinition) -> str:
    source = _row_source(rule)
    return "nowhere (no event and no target)" if source is None else f"table '{source[1]}' on '{source[0]}'"


def _check_notification(action: SendNotification, path: str, refs: CatalogRefs) -> list[Issue]:
    issues: list[Issue] = []
    if action.template is None and action.body is None:
        issues.append(Issue(path, "give a stored `template` or an inline `body`"))
    if action.template is not None and action.body is not None:
        # resolved templates have no `template` left (notification_templates.expand_notifications)
        issues.append(
            Issue(
                path,
                f"give either a stored `template` ('{action.template}') or an inline `body`, not both; "
                "an inline `subject` may be kept to override the template's subject",
                "template",
            )
        )
    if action.channel == "email" and not action.to:
        issues.append(Issue(f"{path}.to", "an email needs at least one recipient in `to`"))
    if action.channel == "in_app" and not action.to:
        issues.append(Issue(f"{path}.to", "an in-app notice needs at least one user name in `to`"))
    if action.channel in {"slack", "webhook"} and action.connection is None:
        issues.append(Issue(f"{path}.connection", f"a {action.channel} notification needs a `connection`"))
    if action.connection is not None:
        kind = {"email": "smtp", "slack": "slack", "webhook": "http"}.get(action.channel)
        if kind is not None:
            refs.connection(action.connection, f"{path}.connection", issues, kind)
    for field in ("subject", "body"):
        issues += check_templates(getattr(action, field), f"{path}.{field}")
    issues += check_templates(action.to, f"{path}.to")
    return issues


def _check_webhook(action: CallWebhook, path: str, refs: CatalogRefs) -> list[Issue]:
    issues: list[Issue] = []
    if (action.connection is None) == (action.url is None):
        issues.append(
            Issue(path, "give either `connection` (with `path`) or a plain `url`, not both or neither")
        )
    if action.connection is not None:
        refs.connection(action.connection, f"{path}.connection", issues, "http")
        if action.path is not None and (
            not action.path.startswith("/")
            or "@" in action.path
            or action.path.startswith("//")
            or "://" in action.path
        ):
            issues.append(
                Issue(f"{path}.path", "path must start with a single '/' and contain no '@' or scheme")
            )
    if action.url is not None and (problem := url_problem(_TEMPLATE_MARKUP.sub("x", action.url))):
        issues.append(Issue(f"{path}.url", problem, "url"))
    issues += check_templates(action.path, f"{path}.path")
    issues += check_templates(action.url, f"{path}.url")
    issues += check_templates(action.body, f"{path}.body")
    issues += check_templates(action.headers, f"{path}.headers")
    return issues
