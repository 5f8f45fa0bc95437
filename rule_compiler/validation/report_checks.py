"""Meaning checks of ``kind: report``: connections, read-only SQL, columns, recipients, templates.

A report's SQL files and HTML template are read here (from ``include/sql/reports/`` and
``include/templates/reports/`` under :func:`rule_compiler.settings.include_dir`) and their text goes
into the compiled spec, so a run executes exactly what was validated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlglot import exp

from rule_compiler.addresses import is_address, is_user_name
from rule_compiler.catalog import Catalog, Connection
from rule_compiler.conditions.durations import DURATION_RE, DurationError, parse_duration
from rule_compiler.definitions.report import (
    REPORT_TEMPLATE_VARIABLES,
    EmailDelivery,
    ReportDefinition,
    ReportQuery,
    StorageDelivery,
)
from rule_compiler.errors import Issue
from rule_compiler.settings import include_dir
from rule_compiler.sql_check import QUERY_PARAMETERS, UnsafeQueryError, parse_query
from rule_compiler.storage_locations import is_under, location_prefix, storage_location_problem
from rule_compiler.storage_paths import static_path_problem
from rule_compiler.templating import TemplateCheckError, check_template
from rule_compiler.validation.partial import WHOLE, Parts
from rule_compiler.validation.refs import CatalogRefs
from rule_compiler.validation.trigger_checks import check_interval, check_query

SQL_FOLDER = Path("sql") / "reports"
TEMPLATE_FOLDER = Path("templates") / "reports"


@dataclass
class ReportSources:
    """The texts a report runs: each query's SQL by id, and its HTML template (None: the default)."""

    sql: dict[str, str] = field(default_factory=dict)
    template: str | None = None


def check_report(
    report: ReportDefinition, catalog: Catalog | None, parts: Parts = WHOLE
) -> tuple[ReportSources, list[Issue]]:
    """Every problem of ``report`` with its JSON path, and the SQL and template texts it will run.

    ``parts``: what of the report did not parse (:mod:`.partial`); checks needing it are skipped, and a
    name of a query or parameter that did not parse is not reported as unknown.
    """
    issues: list[Issue] = []
    refs = CatalogRefs(report.organization, catalog)
    sources = ReportSources()
    if parts.parsed("schedule"):
        issues += check_interval(report.schedule.cron, "schedule.cron")
    parameter_names = _check_parameters(report, issues) | parts.dropped_names("parameters", "name")
    columns: dict[str, list[str] | None] = {}
    seen: set[str] = set()
    for index, query in enumerate(report.queries):
        path = f"queries[{index}]"
        if query.id in seen:
            issues.append(Issue(f"{path}.id", f"query id '{query.id}' is used twice", "duplicate"))
        seen.add(query.id)
        sql = _query_text(query, path, issues)
        connection = refs.connection(query.connection, f"{path}.connection", issues, "database")
        if sql is None:
            continue
        sources.sql[query.id] = sql
        sql_path = f"{path}.sql" if query.sql is not None else f"{path}.sql_file"
        query_issues = check_query(sql, query.connection, connection, sql_path, parameter_names)
        issues += query_issues
        columns[query.id] = None if query_issues else output_columns(sql, connection)
    query_ids = {q.id for q in report.queries} | parts.dropped_names("queries", "id")
    parsed = _Parsed(query_ids if parts.parsed("queries") else None, parts.intact("formats"))
    _check_charts(report, columns, issues, parsed)
    _check_deliveries(report, refs, issues, parsed)
    _check_alert(report, columns, issues, parsed)
    sources.template = _template_text(report, issues)
    return sources, issues


@dataclass(frozen=True)
class _Parsed:
    """What checks of references may rely on: the query ids (None: the queries did not parse) and
    whether every format parsed."""

    query_ids: set[str] | None
    formats: bool


def _check_parameters(report: ReportDefinition, issues: list[Issue]) -> frozenset[str]:
    names: set[str] = set()
    kinds: dict[str, type | tuple[type, ...]] = {
        "string": str,
        "number": (int, float),
        "integer": int,
        "boolean": bool,
        "date": str,
    }
    for index, parameter in enumerate(report.parameters):
        path = f"parameters[{index}]"
        if parameter.name in QUERY_PARAMETERS:
            issues.append(
                Issue(f"{path}.name", f"'{parameter.name}' is set by the run itself; choose another name")
            )
        if parameter.name in names:
            issues.append(
                Issue(f"{path}.name", f"parameter '{parameter.name}' is declared twice", "duplicate")
            )
        names.add(parameter.name)
        default = parameter.default
        wrong_bool = isinstance(default, bool) and parameter.type != "boolean"
        if default is not None and (wrong_bool or not isinstance(default, kinds[parameter.type])):
            issues.append(
                Issue(f"{path}.default", f"the default {default!r} is not a {parameter.type}", "value")
            )
    return frozenset(names)


def _query_text(query: ReportQuery, path: str, issues: list[Issue]) -> str | None:
    if query.sql is not None:
        return query.sql
    assert query.sql_file is not None  # noqa: S101 - the model requires one of the two
    folder = include_dir() / SQL_FOLDER
    file = folder / query.sql_file
    if not file.resolve().is_relative_to(folder.resolve()) or not file.is_file():
        issues.append(Issue(f"{path}.sql_file", f"no SQL file '{query.sql_file}' in {folder}", "file"))
        return None
    return file.read_text(encoding="utf-8")


def output_columns(sql: str, connection: Connection | None) -> list[str] | None:
    """The query's result columns when the SQL says them (names or aliases, or ``*`` over one catalog
    table), else None: then the charts are checked when the query runs."""
    try:
        tree = parse_query(sql)  # on a fresh stack, as the check parsed it
    except UnsafeQueryError:
        return None
    if not isinstance(tree, exp.Select):
        return None  # a UNION and the like: known at run time
    names: list[str] = []
    for expression in tree.selects:
        if expression.is_star:
            source = tree.args.get("from_") or tree.args.get("from")
            table = source.this if source is not None else None
            if (
                connection is None
                or tree.args.get("joins")
                or not isinstance(table, exp.Table)
                or table.name not in connection.tables
            ):
                return None
            names += list(connection.tables[table.name].columns)
        elif expression.alias_or_name:
            names.append(expression.alias_or_name)
        else:
            return None
    return names or None


def _check_charts(
    report: ReportDefinition, columns: dict[str, list[str] | None], issues: list[Issue], parsed: _Parsed
) -> None:
    if parsed.formats and report.charts and not {"html", "pdf"} & set(report.formats):
        issues.append(
            Issue("charts", "charts are drawn in the html and pdf formats; add one of them to `formats`")
        )
    seen: set[str] = set()
    for index, chart in enumerate(report.charts):
        path = f"charts[{index}]"
        if chart.id in seen:
            issues.append(Issue(f"{path}.id", f"chart id '{chart.id}' is used twice", "duplicate"))
        seen.add(chart.id)
        if chart.query not in columns and (parsed.query_ids is None or chart.query not in parsed.query_ids):
            if parsed.query_ids is not None:
                names = ", ".join(q.id for q in report.queries)
                issues.append(
                    Issue(f"{path}.query", f"no query '{chart.query}' (queries: {names})", "reference")
                )
            continue
        known_columns = columns.get(chart.query)
        if known_columns is None:
            continue  # checked when the query runs
        wanted = ([("x", chart.x)] if chart.x else []) + [(f"y[{i}]", c) for i, c in enumerate(chart.y)]
        for where, column in wanted:
            if column not in known_columns:
                issues.append(
                    Issue(
                        f"{path}.{where}",
                        f"query '{chart.query}' returns no column '{column}' "
                        f"(it returns: {', '.join(known_columns)})",
                        "column",
                    )
                )


def _check_deliveries(
    report: ReportDefinition, refs: CatalogRefs, issues: list[Issue], parsed: _Parsed
) -> None:
    for index, delivery in enumerate(report.deliver):
        path = f"deliver[{index}]"
        if delivery.type == "email":
            _check_email(delivery, report, path, issues, parsed)
        elif delivery.type in ("slack", "webhook"):
            kind = "slack" if delivery.type == "slack" else "http"
            refs.connection(delivery.connection, f"{path}.connection", issues, kind)
        elif delivery.type == "in_app":
            for number, name in enumerate(delivery.to):
                if not is_user_name(name):
                    message = f"{name[:100]!r} is not a user name (letters, digits and . _ @ + -)"
                    issues.append(Issue(f"{path}.to[{number}]", message))
        elif delivery.type == "storage":
            _check_storage(delivery, refs, path, issues)


def _check_email(
    delivery: EmailDelivery, report: ReportDefinition, path: str, issues: list[Issue], parsed: _Parsed
) -> None:
    for number, address in enumerate(delivery.to):
        if not is_address(address):
            issues.append(Issue(f"{path}.to[{number}]", f"{address!r} is not an email address"))
    for number, fmt in enumerate(delivery.attach or []):
        if parsed.formats and fmt not in report.formats:
            issues.append(Issue(f"{path}.attach[{number}]", f"'{fmt}' is not one of the report's formats"))
    if delivery.subject:
        _template_issue(delivery.subject, f"{path}.subject", issues)


def _check_storage(delivery: StorageDelivery, refs: CatalogRefs, path: str, issues: list[Issue]) -> None:
    problem = static_path_problem(delivery.path)
    if problem:
        issues.append(Issue(f"{path}.path", problem))
    _template_issue(delivery.path, f"{path}.path", issues)
    if delivery.location is not None or delivery.connection is not None:
        _check_storage_place(delivery.location, delivery.connection, refs, path, issues)


def _check_storage_place(
    location: str | None, conn_id: str | None, refs: CatalogRefs, path: str, issues: list[Issue]
) -> None:
    """Deny by default: a ``location`` (and a ``connection``) must be one of the organization's
    catalog storage connections and lie under one of its ``locations``; neither is the admin's
    default folder."""
    problem = storage_location_problem(location) if location is not None else None
    if problem:
        issues.append(Issue(f"{path}.location", problem))
    if conn_id is None:
        issues.append(Issue(f"{path}.connection", _needs_storage_connection(refs.catalog), "catalog"))
        return
    connection = refs.connection(conn_id, f"{path}.connection", issues, "storage")
    if connection is None or problem:
        return
    allowed = ", ".join(location_prefix(prefix) for prefix in connection.locations)
    if location is None:
        first = location_prefix(connection.locations[0])
        message = (
            f"say where to write with connection '{conn_id}': add `location: {first}` "
            f"(or a folder under any of {allowed})"
        )
    elif not any(is_under(location, prefix) for prefix in connection.locations):
        message = (
            f"connection '{conn_id}' may write only under {allowed}; choose a location under one of "
            "them, or have a platform administrator add its prefix to the connection's `locations` "
            "in the catalog"
        )
    else:
        return
    issues.append(Issue(f"{path}.location", message, "catalog"))


def _needs_storage_connection(catalog: Catalog | None) -> str:
    storage = sorted(
        f"'{conn_id}' ({', '.join(connection.locations)})"
        for conn_id, connection in (catalog.connections.items() if catalog else ())
        if connection.kind == "storage"
    )
    where = (
        f"its storage connections: {'; '.join(storage)}"
        if storage
        else "it has none: a platform administrator adds a connection of kind storage, with the "
        "`locations` it may write under, to the catalog"
    )
    return (
        "a storage `location` needs `connection`: a storage connection of the organization's "
        f"catalog that lists the location under its `locations` ({where}); without both, the "
        "files go to the default folder"
    )


def _check_alert(
    report: ReportDefinition, columns: dict[str, list[str] | None], issues: list[Issue], parsed: _Parsed
) -> None:
    alert = report.alert
    if alert is None:
        return
    check = alert.check
    if parsed.query_ids is not None and check.query not in parsed.query_ids:
        issues.append(Issue("alert.check.query", f"no query '{check.query}'", "reference"))
    known = columns.get(check.query)
    if check.column is not None and known is not None and check.column not in known:
        issues.append(
            Issue("alert.check.column", f"query '{check.query}' returns no column '{check.column}'", "column")
        )
    needs_value = check.operator not in ("not_empty", "changed")
    if needs_value and check.value is None:
        issues.append(Issue("alert.check.value", f"{check.operator} needs a value", "value"))
    if not needs_value and check.value is not None:
        issues.append(Issue("alert.check.value", f"{check.operator} takes no value", "value"))
    if check.operator in ("gt", "gte", "lt", "lte") and isinstance(check.value, bool | str):
        issues.append(
            Issue("alert.check.value", f"{check.operator} compares numbers; give a number", "value")
        )
    try:
        zero = DURATION_RE.match(alert.grace_period.strip())
        if zero is None or int(zero.group(1)) != 0:  # "0m", the default, means no grace period
            parse_duration(alert.grace_period)
    except DurationError as exc:
        issues.append(Issue("alert.grace_period", str(exc), "duration"))


def _template_text(report: ReportDefinition, issues: list[Issue]) -> str | None:
    if report.template is None:
        return None
    folder = include_dir() / TEMPLATE_FOLDER
    file = folder / report.template
    if not file.resolve().is_relative_to(folder.resolve()) or not file.is_file():
        issues.append(Issue("template", f"no report template '{report.template}' in {folder}", "file"))
        return None
    text = file.read_text(encoding="utf-8")
    _template_issue(text, "template", issues)
    return text


def _template_issue(text: str, path: str, issues: list[Issue]) -> None:
    try:
        check_template(text, REPORT_TEMPLATE_VARIABLES)
    except TemplateCheckError as exc:
        issues.append(Issue(path, str(exc), "template"))


def report_summary(report: ReportDefinition) -> dict[str, Any]:
    """What the run's log and notices say about the report (no SQL, no recipients)."""
    return {
        "name": report.name,
        "organization": report.organization,
        "description": report.description,
        "formats": list(report.formats),
    }
