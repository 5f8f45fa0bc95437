"""Semantic checks of a rule's trigger: watched tables and fields, schedules, data-trigger SQL."""

from __future__ import annotations

from rule_compiler.catalog import Catalog, Connection
from rule_compiler.definitions import (
    DataCheck,
    DataTrigger,
    EventTrigger,
    RuleDefinition,
    ScheduleTrigger,
)
from rule_compiler.errors import Issue
from rule_compiler.schedules import MIN_INTERVAL_ENV, describe, minimum_interval, shortest_interval
from rule_compiler.sql_check import QUERY_PARAMETERS, UnsafeQueryError, check_read_only
from rule_compiler.validation.refs import CatalogRefs


def check_trigger(rule: RuleDefinition, refs: CatalogRefs) -> list[Issue]:
    """The trigger's tables, fields, schedule and query against the catalog and the admin's limits."""
    issues: list[Issue] = []
    trigger = rule.trigger
    if isinstance(trigger, EventTrigger):
        found = refs.table(trigger.connection, trigger.table, "trigger.table", issues)
        if found is not None:
            for position, field in enumerate(trigger.fields or []):
                if field not in found[1].columns:
                    issues.append(
                        Issue(
                            f"trigger.fields[{position}]",
                            f"table '{trigger.table}' has no column "
                            f"'{field}' (its columns: {', '.join(sorted(found[1].columns))})",
                        )
                    )
    elif isinstance(trigger, DataTrigger):
        connection = refs.connection(trigger.connection, "trigger.connection", issues, "database")
        issues += check_interval(trigger.schedule, "trigger.schedule")
        issues += check_query(trigger.sql, trigger.connection, connection, "trigger.sql")
        issues += _check_data_check(trigger.check, "trigger.check")
    elif trigger.target is not None:
        refs.table(trigger.target.connection, trigger.target.table, "trigger.target.table", issues)
    if isinstance(trigger, ScheduleTrigger):
        issues += check_interval(trigger.cron, "trigger.cron")
    return issues


def capture_warnings(rule: RuleDefinition, catalog: Catalog | None) -> list[Issue]:
    """Not errors: an event rule on a table the catalog knows has no change capture never fires."""
    trigger = rule.trigger
    if catalog is None or not isinstance(trigger, EventTrigger):
        return []
    connection = catalog.connections.get(trigger.connection)
    table = connection.tables.get(trigger.table) if connection is not None else None
    if table is None or table.capture_installed is not False:
        return []
    return [
        Issue(
            "trigger.table",
            f"change capture is not installed on {trigger.connection}.{trigger.table}, so this rule "
            f"will never fire: run `rule-compiler events install --connection {trigger.connection} "
            f"--table {trigger.table}`",
            "capture_not_installed",
        )
    ]


def check_query(
    sql: str,
    conn_id: str,
    connection: Connection | None,
    path: str,
    extra_parameters: frozenset[str] = frozenset(),
) -> list[Issue]:
    """One read-only statement, reading only catalog tables, binding only the run's own values (and
    ``extra_parameters``: a report's typed parameters)."""
    try:
        query = check_read_only(sql)
    except UnsafeQueryError as exc:
        return [Issue(path, str(exc), "sql")]
    issues: list[Issue] = []
    allowed_parameters = QUERY_PARAMETERS | extra_parameters
    unknown_parameters = sorted(set(query.parameters) - allowed_parameters)
    if unknown_parameters:
        issues.append(
            Issue(
                path,
                f"unknown bind parameter{'s' if len(unknown_parameters) > 1 else ''} "
                f"{', '.join(':' + p for p in unknown_parameters)}; a query may use "
                f"{', '.join(':' + p for p in sorted(allowed_parameters))}",
                "sql",
            )
        )
    if connection is not None:
        outside = [t for t in query.tables if t not in connection.tables]
        if outside:
            allowed = ", ".join(sorted(connection.tables)) or "none"
            issues.append(
                Issue(
                    path,
                    f"the query reads {', '.join(repr(t) for t in outside)}, not in the catalog for "
                    f"connection '{conn_id}' (allowed tables: {allowed})",
                    "catalog",
                )
            )
    return issues


def _check_data_check(check: DataCheck, path: str) -> list[Issue]:
    """A value that fits the operator: a number to order by, something to equal, none for rows."""
    value, operator = check.value, check.operator
    if operator == "returns_rows":
        if value is None:
            return []
        return [Issue(f"{path}.value", "returns_rows takes no value: it passes when the query returns a row")]
    if value is None:
        return [
            Issue(f"{path}.value", f"{operator} needs a value (a NULL result never passes a check)", "value")
        ]
    if operator in ("gt", "gte", "lt", "lte") and isinstance(value, bool | str):
        return [
            Issue(
                f"{path}.value",
                f"{operator} compares numbers, so its value must be a number, not {value!r}",
                "value",
            )
        ]
    return []


def check_interval(cron: str, path: str) -> list[Issue]:
    """A schedule may not run more often than the admin's minimum interval."""
    minimum = minimum_interval()
    shortest = shortest_interval(cron)
    if shortest >= minimum:
        return []
    return [
        Issue(
            path,
            f"'{cron}' runs every {describe(shortest)}, more often than the minimum interval of "
            f"{describe(minimum)} this installation allows ({MIN_INTERVAL_ENV}); choose a sparser "
            "schedule or use an event trigger",
            "schedule_interval",
        )
    ]
