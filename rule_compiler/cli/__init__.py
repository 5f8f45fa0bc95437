"""``rule-compiler``: validate, compile and register definitions; manage the store and catalogs.

Exit codes: 0 success, 1 invalid definitions (every problem listed), 2 usage or environment errors.
``test-rule``: 0 the rule matches, 1 it does not (or is not triggered), 2 an error.
``test-workflow``: 0 tested (started or not), 1 an invalid workflow, 2 an error.

This module holds the pure commands (``python -m rule_compiler.cli``). The console script
``rule-compiler`` is ``rule_engine.console_script:main`` (the Airflow side): it calls :func:`main` with an
``engine_for`` that resolves Airflow connection ids, and an extension adding the commands that need
Airflow (``catalog sync``). Extensions get a :class:`Subcommands` to add parsers to.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rule_compiler.cli import (
    audit_log,
    change_capture,
    commands,
    notifications,
    report,
    report_log,
    restore,
    retention,
    stats,
    workflow_testing,
)

if TYPE_CHECKING:
    import sqlalchemy as sa

    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]

EXIT_OK, EXIT_INVALID, EXIT_ERROR = 0, 1, 2


@dataclass(frozen=True)
class Subcommands:
    """Where extensions add commands: ``root`` (top level) and ``groups`` (``catalog``, ``db``...)."""

    root: SubParsers
    groups: dict[str, SubParsers] = field(default_factory=dict)


#: Adds commands to the parser (``rule_engine.console_script`` adds ``catalog sync``).
Extension = Callable[[Subcommands], None]
#: Resolves a connection id to a SQLAlchemy engine (Airflow connections, on the Airflow side).
EngineFor = Callable[[str], "sa.Engine"]


def build_parser(extensions: Sequence[Extension] = ()) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rule-compiler", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--store",
        help="rule store SQLAlchemy URL (default: $AUTOMATION_STORE_URL or SQLite under $AIRFLOW_HOME)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_catalog(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--catalog",
            type=commands.Path,
            help="catalog YAML/JSON file to validate against "
            "(default: the organization's catalog in the store)",
        )
        p.add_argument(
            "--templates",
            type=commands.Path,
            metavar="DIR",
            help="folder of condition templates (`use`) and notification templates (`template`) "
            "rules may name (over the stored ones; templates among the files themselves win)",
        )

    _add_validate(sub, with_catalog)

    p = sub.add_parser("compile", help="print the compiled spec (DagSpec JSON) of one definition")
    p.add_argument("path", type=commands.Path)
    with_catalog(p)
    p.set_defaults(run=commands.compile_one)

    p = sub.add_parser(
        "apply", help="validate, compile and store definitions (unchanged ones are left alone)"
    )
    p.add_argument("paths", nargs="+", type=commands.Path, help="files or folders")
    p.add_argument("--actor", default=None, help="who is applying (default: $USER)")
    p.add_argument("--dry-run", action="store_true", help="validate and compile only")
    with_catalog(p)
    p.set_defaults(run=commands.apply)

    p = sub.add_parser("list", help="list stored definitions")
    p.add_argument("--org", dest="organization")
    p.add_argument("--all", action="store_true", help="include deleted ones")
    p.set_defaults(run=commands.list_definitions)

    p = sub.add_parser("export", help="write stored definitions back out as YAML files")
    p.add_argument("--org", dest="organization")
    p.add_argument("--out", type=commands.Path, default=None, help="folder (default: print to stdout)")
    p.set_defaults(run=commands.export)

    restore.add_parser(sub)
    _add_test_rule(sub, with_catalog)

    p = sub.add_parser("db", help="rule store database")
    db = p.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db.add_parser("upgrade", help="create or migrate the rule store's tables").set_defaults(
        run=commands.db_upgrade
    )

    p = sub.add_parser("catalog", help="what each organization's rules may use")
    cat = p.add_subparsers(dest="catalog_command", required=True, metavar="ACTION")
    c = cat.add_parser("apply", help="store a catalog file (a new version when it changed)")
    c.add_argument("path", type=commands.Path)
    c.add_argument("--actor", default=None)
    c.set_defaults(run=commands.catalog_apply)
    c = cat.add_parser("show", help="print an organization's current catalog")
    c.add_argument("--org", dest="organization", required=True)
    c.set_defaults(run=commands.catalog_show)
    _add_catalog_grants(cat)

    sch = _add_schema(sub)

    notes = notifications.add_parser(sub)
    capture = change_capture.add_parsers(sub)
    reports = report.add_parser(sub)
    report_log.add_parser(reports)
    stats.add_parser(sub)
    audit_log.add_parser(sub)
    retention.add_parser(sub)

    groups = Subcommands(
        sub,
        {
            "catalog": cat,
            "db": db,
            "schema": sch,
            "notifications": notes,
            "events": capture,
            "report": reports,
        },
    )
    for extend in extensions:
        extend(groups)
    return parser


def _add_catalog_grants(cat: SubParsers) -> None:
    c = cat.add_parser(
        "grants",
        help="print the Postgres statements that let a query role SELECT only the catalog's tables",
        description="Print the statements (for psql, run by the database owner) that create a "
        "restricted role able to SELECT exactly the tables the catalog lists for a database "
        "connection, for `query_role` in the catalog: author SQL then runs as that role.",
    )
    c.add_argument("--org", dest="organization", required=True)
    c.add_argument("--connection", required=True, help="the catalog's database connection id")
    c.add_argument("--role", required=True, help="the role to create or reset, e.g. automation_reader")
    c.add_argument("--schema", default="public", help="the schema of the catalog's tables (default: public)")
    c.add_argument("--grant-to", default=None, metavar="USER", help="the connection's login user")
    c.add_argument("--catalog", type=commands.Path, help="catalog file (default: the stored catalog)")
    c.set_defaults(run=commands.catalog_grants)


def _add_validate(sub: SubParsers, with_catalog: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser(
        "validate",
        help="check definitions; list every problem with its JSON path",
        description="Check definition files (or, with --stored, every definition in the rule store) "
        "and list every problem with its JSON path. Exit codes: 0 all valid, 1 some refused, 2 error.",
    )
    p.add_argument("paths", nargs="*", type=commands.Path, help="files or folders")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.add_argument(
        "--stored",
        action="store_true",
        help="re-check the current version of every stored definition (and catalog) against today's "
        "validation and its organization's stored catalog; lists those now refused (reads only)",
    )
    p.add_argument("--org", dest="organization", help="with --stored: only this organization")
    with_catalog(p)
    p.set_defaults(run=commands.validate)


def _add_schema(sub: SubParsers) -> SubParsers:
    p = sub.add_parser("schema", help="JSON Schemas of the definition format")
    sch = p.add_subparsers(dest="schema_command", required=True, metavar="ACTION")
    c = sch.add_parser("export", help="write the schemas (default folder: include/schemas)")
    c.add_argument("--out", type=commands.Path, default=commands.Path("include/schemas"))
    c.set_defaults(run=commands.schema_export)
    return sch


def _add_test_rule(sub: SubParsers, with_catalog: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser(
        "test-rule",
        help="would a rule fire for this event? prints the condition trace (exit 0 match, 1 no match)",
        description="Validate RULE, check EVENT fits its trigger, evaluate its conditions against the "
        "event's row and print why it does or does not match. Exit codes: 0 matched, 1 not matched "
        "or not triggered, 2 error (unreadable files, invalid rule or event).",
    )
    p.add_argument("rule", metavar="RULE", type=commands.Path, help="the rule file (YAML or JSON)")

    def tester_options(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--event",
            metavar="EVENT.json",
            type=commands.Path,
            required=True,
            help='event JSON: {"table", "operation", "new", "old"} (also key, changed_fields, connection)',
        )
        p.add_argument(
            "--connection",
            default=None,
            help="Airflow connection to read related rows from (foreign-key paths such as customer__tier); "
            "needs the `rule-compiler` installed with the plugin",
        )
        p.add_argument("--format", choices=["text", "json"], default="text")
        p.add_argument(
            "--now", default=None, help="ISO date-time for older_than/newer_than (default: now, UTC)"
        )
        with_catalog(p)

    tester_options(p)
    p.set_defaults(run=commands.test_rule)
    workflow_testing.add_parser(sub, tester_options)


def main(
    argv: Sequence[str] | None = None,
    *,
    engine_for: EngineFor | None = None,
    extensions: Sequence[Extension] = (),
) -> int:
    """Run one command. ``engine_for`` resolves ``--connection`` ids (None: ``--connection`` is refused)."""
    args = build_parser(extensions).parse_args(argv)
    args.engine_for = engine_for
    try:
        code: int = args.run(args)
    except commands.CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
