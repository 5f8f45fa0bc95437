"""Semantic checks of a rule's trigger: watched tables and fields, schedules, data-trigger SQL."""

from __future__ import annotations

from rule_compiler.catalog import Connection
from rule_compiler.definitions import DataTrigger, EventTrigger, RuleDefinition, ScheduleTrigger
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
        issues += _check_interval(trigger.schedule, "trigger.schedule")
        issues += _check_query(trigger.sql, trigger.connection, connection, "trigger.sql")
    elif trigger.target is not None:
        refs.table(trigger.target.connection, trigger.target.table, "trigger.target.table", issues)
    if isinstance(trigger, ScheduleTrigger):
        issues += _check_interval(trigger.cron, "trigger.cron")
    return issues


def _check_query(sql: str, conn_id: str, connection: Connection | None, path: str) -> list[Issue]:
    """One read-only statement, reading only catalog tables, binding only the run's own values."""
    try:
        query = check_read_only(sql)
    except UnsafeQueryError as exc:
        return [Issue(path, str(exc), "sql")]
    issues: list[Issue] = []
    unknown_parameters = sorted(set(query.parameters) - QUERY_PARAMETERS)
    if unknown_parameters:
        issues.append(
            Issue(
                path,
                f"unknown bind parameter{'s' if len(unknown_parameters) > 1 else ''} "
                f"{', '.join(':' + p for p in unknown_parameters)}; a query may use "
                f"{', '.join(':' + p for p in sorted(QUERY_PARAMETERS))}",
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


def _check_interval(cron: str, path: str) -> list[Issue]:
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
