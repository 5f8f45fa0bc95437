"""``rule-compiler events install|uninstall|status`` (change capture) and ``next-runs`` (schedules).

``events`` commands reach the application database through an Airflow connection id
(``--connection``), resolved by the ``rule-compiler`` console script, or through a plain SQLAlchemy
``--url`` (for scripts and tests; never put passwords on a command line you share).

``install`` / ``uninstall`` with ``--connection`` also record the new state (``capture_installed``)
in every stored catalog that lists the connection's table, so validation stops (or starts) warning
about event rules on it. With ``--url`` the connection id is unknown: ``catalog sync`` records it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rule_compiler import events as capture
from rule_compiler import settings
from rule_compiler.catalog import Catalog
from rule_compiler.cli.common import CliError, actor_from_args, store_from_args
from rule_compiler.clock import utcnow
from rule_compiler.definitions import DataTrigger, RuleDefinition, ScheduleTrigger
from rule_compiler.definitions.definition_template import RuleTemplateDefinition
from rule_compiler.errors import DefinitionError, RuleValidationError, StoreError
from rule_compiler.kinds import RULE_TEMPLATE
from rule_compiler.loading import read_definition_file
from rule_compiler.schedules import MAX_PREVIEW, next_runs
from rule_compiler.validation.template_use import expand_use

if TYPE_CHECKING:
    import sqlalchemy as sa

    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]

EXIT_OK = 0


def add_parsers(sub: SubParsers) -> SubParsers:
    """Add ``events`` (returned, for extensions) and ``next-runs``."""
    p = sub.add_parser("events", help="change capture: row triggers that write the outbox")
    actions = p.add_subparsers(dest="events_command", required=True, metavar="ACTION")
    for name, run, text in (
        ("install", install, "create the outbox and the table's capture triggers (safe to re-run)"),
        ("uninstall", uninstall, "drop the table's capture triggers (captured events stay)"),
    ):
        c = actions.add_parser(name, help=text)
        _target(c)
        c.add_argument("--table", action="append", required=True, help="table (repeat for several)")
        c.set_defaults(run=run)
    c = actions.add_parser("status", help="which tables are captured, and which need a re-install")
    _target(c)
    c.add_argument("--table", action="append", help="only these tables (default: every captured one)")
    c.add_argument("--json", action="store_true")
    c.set_defaults(run=status)

    p = sub.add_parser("next-runs", help="preview the next run times of a scheduled rule")
    p.add_argument("rule", metavar="RULE", help="a rule file, or ORG/NAME of a stored rule")
    p.add_argument("--count", type=int, default=5, help=f"how many (1-{MAX_PREVIEW}, default 5)")
    p.add_argument("--after", default=None, help="ISO date-time to start from (default: now)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=preview_runs)
    return actions


def _target(p: argparse.ArgumentParser) -> None:
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--connection", help="Airflow connection id of the application database")
    where.add_argument("--url", help="SQLAlchemy URL of the application database")


def _engine(args: argparse.Namespace) -> sa.Engine:
    if args.url:
        import sqlalchemy as sa

        return sa.create_engine(args.url)
    engine_for = getattr(args, "engine_for", None)
    if engine_for is None:
        raise CliError(
            f"--connection {args.connection}: connections are Airflow's; use the `rule-compiler` "
            "command installed with the plugin, or give --url"
        )
    engine: sa.Engine = engine_for(args.connection)
    return engine


def install(args: argparse.Namespace) -> int:
    def one(engine: sa.Engine, table: str) -> str:
        state = capture.install(engine, table)
        return f"capture installed on '{state.table}': changes now reach {capture.OUTBOX_TABLE}"

    return _each_table(args, one, installed=True)


def uninstall(args: argparse.Namespace) -> int:
    def one(engine: sa.Engine, table: str) -> str:
        removed = capture.uninstall(engine, table)
        return f"capture {'removed from' if removed else 'was not installed on'} '{table}'"

    return _each_table(args, one, installed=False)


def _each_table(args: argparse.Namespace, apply: Callable[[sa.Engine, str], str], *, installed: bool) -> int:
    """Run ``apply`` on each ``--table`` in turn, printing what it did; a capture error exits 2.

    The tables done are then marked ``installed`` in the stored catalogs (even after an error).
    """
    engine = _engine(args)
    done: list[str] = []
    try:
        for table in args.table:
            print(apply(engine, table))
            done.append(table)
    except capture.CaptureError as exc:
        raise CliError(str(exc)) from None
    finally:
        engine.dispose()
        if done:
            _record_in_catalogs(args, done, installed)
    return EXIT_OK


def _record_in_catalogs(args: argparse.Namespace, tables: list[str], installed: bool) -> None:
    """Set ``capture_installed`` of ``tables`` in every stored catalog listing them; never raises."""
    conn_id: str | None = args.connection
    if conn_id is None:
        print(
            "note: with --url the catalog is not updated; run `rule-compiler catalog sync --connection ID` "
            "(or use --connection) so validation knows"
        )
        return
    if not _store_configured(args):
        return
    try:
        marked = _mark_tables(args, conn_id, tables, installed)
    except (StoreError, ValueError) as exc:
        print(
            f"warning: the catalog in the rule store was not updated ({exc}); run "
            f"`rule-compiler catalog sync --connection {conn_id}` once the store is reachable",
            file=sys.stderr,
        )
        return
    state = "installed" if installed else "not installed"
    for organization, (names, version) in marked.items():
        print(f"catalog of {organization}: capture {state} on {', '.join(names)} (version {version})")
    if not marked:
        listed = ", ".join(f"{conn_id}.{table}" for table in tables)
        print(
            f"note: no stored catalog lists {listed}; "
            f"`rule-compiler catalog sync --connection {conn_id}` adds it"
        )


def _store_configured(args: argparse.Namespace) -> bool:
    """``--store``, ``$AUTOMATION_STORE_URL``, or the default SQLite store exists (never create it)."""
    if args.store or os.environ.get(settings.STORE_URL_ENV):
        return True
    import sqlalchemy as sa

    database = sa.make_url(settings.store_url()).database
    return bool(database) and os.path.exists(str(database))


def _mark_tables(
    args: argparse.Namespace, conn_id: str, tables: list[str], installed: bool
) -> dict[str, tuple[list[str], int]]:
    """Organization -> (tables listed in its catalog, catalog version after) for each catalog listing one."""
    store = store_from_args(args)
    marked: dict[str, tuple[list[str], int]] = {}
    for organization in store.catalog_organizations():
        raw = store.get_catalog(organization)
        if raw is None:
            continue
        catalog = Catalog.model_validate(raw)
        connection = catalog.connections.get(conn_id)
        listed = [t for t in tables if connection is not None and t in connection.tables]
        if connection is None or not listed:
            continue
        updated = connection.model_copy(
            update={
                "tables": {
                    name: table.model_copy(update={"capture_installed": installed})
                    if name in listed
                    else table
                    for name, table in connection.tables.items()
                }
            }
        )
        catalog = catalog.model_copy(update={"connections": {**catalog.connections, conn_id: updated}})
        version = store.put_catalog(
            organization=organization, catalog=catalog.model_dump(mode="json"), actor=actor_from_args(args)
        )
        marked[organization] = (listed, version)
    return marked


def status(args: argparse.Namespace) -> int:
    engine = _engine(args)
    try:
        states = capture.status(engine, args.table)
    finally:
        engine.dispose()
    if args.json:
        print(json.dumps([{**vars(s), "up_to_date": s.up_to_date} for s in states], indent=2))
        return EXIT_OK
    if not states:
        print("no table is captured; run `rule-compiler events install --connection ID --table NAME`")
    for state in states:
        if not state.installed:
            print(
                f"{state.table}: not captured (run `rule-compiler events install ... --table {state.table}`)"
            )
        elif state.stale_columns:
            print(
                f"{state.table}: captured, but not columns {', '.join(state.stale_columns)} added since; "
                "re-run `rule-compiler events install` for it"
            )
        else:
            print(f"{state.table}: captured")
    return EXIT_OK


def preview_runs(args: argparse.Namespace) -> int:
    if not 1 <= args.count <= MAX_PREVIEW:
        raise CliError(f"--count must be between 1 and {MAX_PREVIEW}")
    try:
        after = dt.datetime.fromisoformat(args.after) if args.after else utcnow()
    except ValueError:
        raise CliError(
            f"--after {args.after!r} is not an ISO date-time (e.g. 2026-11-20T12:00:00Z)"
        ) from None
    rule = _rule(args)
    trigger = rule.trigger
    if isinstance(trigger, ScheduleTrigger):
        cron, zone = trigger.cron, trigger.timezone
    elif isinstance(trigger, DataTrigger):
        cron, zone = trigger.schedule, trigger.timezone
    else:
        raise CliError(f"rule '{rule.name}' has a {trigger.type} trigger, which has no schedule")
    runs = next_runs(cron, zone, after=after, count=args.count)
    if args.json:
        print(json.dumps({"cron": cron, "timezone": zone, "runs": [r.isoformat() for r in runs]}, indent=2))
    else:
        print(f"{rule.organization}/{rule.name}: '{cron}' in {zone}")
        for run in runs:
            print(f"  {run.isoformat()}  ({run.astimezone(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')})")
    return EXIT_OK


def _rule(args: argparse.Namespace) -> RuleDefinition:
    from pathlib import Path

    path = Path(args.rule)
    data: Any
    if path.exists():
        try:
            data = read_definition_file(path)
        except DefinitionError as exc:
            raise CliError(f"{path}: {exc}") from None
    elif "/" in args.rule and not path.suffix:
        organization, name = args.rule.split("/", 1)
        try:
            data = store_from_args(args).get(organization=organization, kind="rule", name=name).source
        except StoreError as exc:
            raise CliError(str(exc)) from None
    else:
        raise CliError(f"{args.rule}: no such file, and not ORG/NAME of a stored rule")
    if isinstance(data, dict) and "use" in data:
        data = _expanded(args, data)
    try:
        return RuleDefinition.model_validate(data)
    except ValueError as exc:
        raise CliError(f"{args.rule} is not a valid rule: {exc}") from None


def _expanded(args: argparse.Namespace, data: dict[str, Any]) -> dict[str, Any]:
    """A rule written with ``use``, expanded with its organization's stored rule templates."""
    organization = str(data.get("organization", ""))
    try:
        rows = store_from_args(args).definitions_of_kind(organization, RULE_TEMPLATE)
    except StoreError as exc:
        raise CliError(str(exc)) from None
    templates = {row.name: RuleTemplateDefinition.model_validate(row.source) for row in rows}
    try:
        return expand_use(data, RULE_TEMPLATE, templates).document
    except RuleValidationError as exc:
        raise CliError(f"{args.rule} is not a valid rule: {exc}") from None
