"""Lowering: a valid ``RuleDefinition`` (plus its catalog) becomes a deterministic ``DagSpec``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rule_compiler.canonical import content_hash
from rule_compiler.catalog import Catalog, Connection, resolve_field
from rule_compiler.compiler.docs import render_doc_md
from rule_compiler.compiler.ir import DagSpec, ScheduleSpec, TaskSpec
from rule_compiler.conditions import compile_condition
from rule_compiler.definitions import (
    Action,
    ConditionNode,
    CreateRecord,
    DataTrigger,
    DeleteRecord,
    EventTrigger,
    RuleDefinition,
    ScheduleTrigger,
    SendNotification,
    Trigger,
    UpdateRecord,
)
from rule_compiler.errors import CompileError
from rule_compiler.notification_templates import TemplateRef
from rule_compiler.templating import record_fields, template_strings

#: Bumped when compiled output changes; golden files are updated together with it.
COMPILER_VERSION = "4"
DATA_SENSOR_TASK = "wait_for_data"
EVALUATE_TASK = "evaluate_conditions"
OUTCOME_TASK = "record_outcome"
#: The UI labels of the fixed tasks (their ids never change; labels may).
TASK_DISPLAY_NAMES = {
    DATA_SENSOR_TASK: "wait for data",
    EVALUATE_TASK: "evaluate conditions",
    OUTCOME_TASK: "record outcome",
}


def dag_id_for(kind: str, organization: str, name: str) -> str:
    """``rule__acme__escalate-vip-orders``: stable across versions and compiler releases."""
    return f"{kind}__{organization}__{name}"


def dag_display_name(title: str | None, organization: str, name: str) -> str:
    """The DAG's name in the Airflow UI: the author's ``title``, else ``escalate-vip-orders (acme)``."""
    return title or f"{name} ({organization})"


def action_display_name(action: Action) -> str:
    """An action task's label in the Airflow UI: ``update_record: escalate``."""
    return f"{action.type}: {action.id}"


def compile_rule(
    rule: RuleDefinition, catalog: Catalog, *, notification_refs: Mapping[str, TemplateRef] | None = None
) -> DagSpec:
    """Lower a validated rule. Pure and deterministic: same input, same bytes.

    ``rule`` has its notification templates resolved (``Validated.rule``); ``notification_refs`` (action
    id → template) records which template each resolved notification came from.
    """
    source = rule.model_dump(mode="json", by_alias=True, exclude_defaults=False)
    row_source = _row_source_plan(rule, catalog)
    refs = notification_refs or {}
    tasks = (
        [data_sensor_task(f"{rule.organization}/{rule.name}", rule.trigger)]
        if isinstance(rule.trigger, DataTrigger)
        else []
    )
    tasks.append(_evaluate_task(rule, row_source, catalog))
    tasks += [_action_task(rule, action, catalog, row_source, refs.get(action.id)) for action in rule.actions]
    tasks.append(_outcome_task(rule))
    return DagSpec(
        compiler_version=COMPILER_VERSION,
        dag_id=dag_id_for("rule", rule.organization, rule.name),
        rule_id=f"{rule.organization}/{rule.name}",
        organization=rule.organization,
        kind="rule",
        name=rule.name,
        display_name=dag_display_name(rule.title, rule.organization, rule.name),
        description=rule.description,
        owner=rule.owner,
        active=rule.active,
        tags=dag_tags(rule.organization, rule.trigger.type, rule.tags),
        schedule=_schedule(rule),
        doc_md=render_doc_md(rule),
        source_hash=content_hash(source),
        tasks=tuple(tasks),
    )


def dag_tags(organization: str, trigger_type: str, tags: Iterable[str], *extra: str) -> tuple[str, ...]:
    """A definition's DAG tags, sorted: ``automation``, ``org:…``, ``trigger:…``, ``tag:…`` of its own
    tags, and ``extra`` (a workflow's ``workflow``)."""
    own = {f"tag:{t}" for t in tags}
    return tuple(sorted({"automation", f"org:{organization}", f"trigger:{trigger_type}", *own, *extra}))


def _schedule(rule: RuleDefinition) -> ScheduleSpec:
    return schedule_of(rule.trigger)


def schedule_of(trigger: Trigger) -> ScheduleSpec:
    """How runs of a definition with ``trigger`` start."""
    if isinstance(trigger, ScheduleTrigger):
        return ScheduleSpec(kind="cron", cron=trigger.cron, timezone=trigger.timezone)
    if isinstance(trigger, DataTrigger):
        return ScheduleSpec(
            kind="data", cron=trigger.schedule, timezone=trigger.timezone, connection=trigger.connection
        )
    if isinstance(trigger, EventTrigger):
        return ScheduleSpec(kind="event", connection=trigger.connection, table=trigger.table)
    return ScheduleSpec(kind="manual")


def _connection(catalog: Catalog, conn_id: str) -> Connection:
    try:
        return catalog.connections[conn_id]
    except KeyError:
        raise CompileError(
            f"connection '{conn_id}' missing from the catalog; validate before compiling"
        ) from None


def field_plan(connection: Connection, table: str, fields: frozenset[str]) -> dict[str, Any]:
    """How to read a table's rows with the foreign-key paths ``fields`` need, for the runtime."""
    base = connection.tables[table]
    paths: dict[str, Any] = {}
    for path in sorted(f for f in fields if "__" in f):
        resolved = resolve_field(connection, table, path)
        paths[path] = {
            "column": resolved.column_name,
            "joins": [
                {
                    "from_table": src,
                    "fk_column": fk.column,
                    "table": fk.references_table,
                    "column": fk.references_column,
                }
                for src, fk in resolved.hops
            ],
        }
    types = {name: column.type for name, column in base.columns.items()}
    types.update({path: resolve_field(connection, table, path).column.type for path in paths})
    return {
        "table": table,
        "primary_key": base.primary_key,
        "columns": sorted(base.columns),
        "paths": paths,
        "types": dict(sorted(types.items())),
    }


def _row_source_plan(rule: RuleDefinition, catalog: Catalog) -> dict[str, Any] | None:
    trees = [rule.conditions] if rule.conditions is not None else []
    return row_source_plan(rule.trigger, trees, rule.actions, catalog)


def row_source_plan(
    trigger: Trigger,
    trees: Iterable[ConditionNode],
    actions: Iterable[Action],
    catalog: Catalog,
    texts: Iterable[str] = (),
) -> dict[str, Any] | None:
    """How a run reads its rows (the event's table or the target's), with every field the condition
    ``trees``, the ``actions``' templates and the other template ``texts`` read (a workflow's delay and
    approval nodes); None when the trigger gives a run no rows."""
    if isinstance(trigger, EventTrigger):
        conn_id, table = trigger.connection, trigger.table
    elif (target := getattr(trigger, "target", None)) is not None:
        conn_id, table = target.connection, target.table
    else:
        return None
    fields: set[str] = set()
    for tree in trees:
        fields |= compile_condition(tree).fields
    for action in actions:
        fields |= action_record_fields(action)
    for text in texts:
        fields |= record_fields(text)
    return {"connection": conn_id, **field_plan(_connection(catalog, conn_id), table, frozenset(fields))}


def action_record_fields(action: Action) -> set[str]:
    """The triggering row's fields an action's templates read (``{{ record.customer__email }}``)."""
    data = action.model_dump(mode="json", by_alias=True, exclude_none=True)
    return {field for _, text in template_strings(data, "") for field in record_fields(text)}


def _condition_json(node: ConditionNode | None) -> Any:
    return None if node is None else node.model_dump(mode="json", by_alias=True, exclude_none=True)


def _evaluate_task(rule: RuleDefinition, row_source: dict[str, Any] | None, catalog: Catalog) -> TaskSpec:
    return TaskSpec(
        task_id=EVALUATE_TASK,
        display_name=TASK_DISPLAY_NAMES[EVALUATE_TASK],
        kind="evaluate_conditions",
        params={
            "rule_id": f"{rule.organization}/{rule.name}",
            "trigger": rule.trigger.model_dump(mode="json", exclude_none=True),
            "conditions": _condition_json(rule.conditions),
            "row_source": row_source,
        },
        upstream=(DATA_SENSOR_TASK,) if isinstance(rule.trigger, DataTrigger) else (),
        retries=2,
        timeout_seconds=600,
    )


def data_sensor_task(definition_id: str, trigger: DataTrigger) -> TaskSpec:
    """The gate of a data trigger: poke the read-only query until its check holds (or give up: skipped)."""
    return TaskSpec(
        task_id=DATA_SENSOR_TASK,
        display_name=TASK_DISPLAY_NAMES[DATA_SENSOR_TASK],
        kind="data_sensor",
        params={
            "rule_id": definition_id,
            "connection": trigger.connection,
            "sql": trigger.sql,
            "check": trigger.check.model_dump(mode="json", exclude_none=True),
            "poke_interval": trigger.poke_interval,
            "timeout": trigger.timeout,
        },
        retries=2,
        timeout_seconds=120,
    )


def action_params(
    action: Action,
    catalog: Catalog,
    row_source: dict[str, Any] | None,
    ref: TemplateRef | None,
    *,
    event_rule: bool = False,
) -> dict[str, Any]:
    params: dict[str, Any] = action.model_dump(
        mode="json",
        by_alias=True,
        exclude_none=True,
        exclude={"id", "depends_on", "retries", "timeout", "on_failure", "type"},
    )
    if isinstance(action, CreateRecord | UpdateRecord | DeleteRecord):
        where = getattr(action, "where", None)
        fields = compile_condition(where).fields if where is not None else frozenset()
        params["plan"] = field_plan(_connection(catalog, action.connection), action.table, fields)
        soft_column = catalog.connections[action.connection].tables[action.table].soft_delete_column
        if isinstance(action, DeleteRecord) and action.soft:
            params["soft_delete_column"] = soft_column
    if isinstance(action, SendNotification):
        params.update(_notification_params(action, ref))
    if row_source is not None and (event_rule or action_record_fields(action)):
        # templates read the triggering row; an event rule's actions read their events back by id
        params["row_source"] = row_source
    return params


def _notification_params(action: SendNotification, ref: TemplateRef | None) -> dict[str, Any]:
    """A notification from a template: always ``subject`` and ``body``, plus where they came from."""
    if action.template is not None:
        raise CompileError(
            f"action '{action.id}' still names notification template '{action.template}'; "
            "validate (which resolves templates) before compiling"
        )
    if ref is None:
        return {}  # inline: as written
    return {"subject": action.subject or "", "body": action.body or "", "from_template": ref.as_params()}


def _action_task(
    rule: RuleDefinition,
    action: Action,
    catalog: Catalog,
    row_source: dict[str, Any] | None,
    ref: TemplateRef | None = None,
) -> TaskSpec:
    return TaskSpec(
        task_id=action.id,
        display_name=action_display_name(action),
        kind=action.type,
        params={
            "rule_id": f"{rule.organization}/{rule.name}",
            "action_id": action.id,
            **action_params(
                action, catalog, row_source, ref, event_rule=isinstance(rule.trigger, EventTrigger)
            ),
        },
        upstream=tuple(sorted(action.depends_on)) or (EVALUATE_TASK,),
        retries=action.retries,
        timeout_seconds=action.timeout,
        on_failure=action.on_failure,
    )


def _outcome_task(rule: RuleDefinition) -> TaskSpec:
    return TaskSpec(
        task_id=OUTCOME_TASK,
        display_name=TASK_DISPLAY_NAMES[OUTCOME_TASK],
        kind="record_outcome",
        params={
            "rule_id": f"{rule.organization}/{rule.name}",
            "actions": [{"id": a.id, "on_failure": a.on_failure} for a in rule.actions],
        },
        upstream=tuple(sorted(a.id for a in rule.actions)),
        retries=2,
        timeout_seconds=120,
        trigger_rule="all_done",
    )
