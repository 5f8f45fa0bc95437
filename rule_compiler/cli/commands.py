"""The CLI's commands: each takes parsed arguments and returns an exit code."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from rule_compiler.catalog import Catalog
from rule_compiler.cli.batch import (
    Counts,
    DefinitionSource,
    check_files,
    dependents_of_batch,
    print_dependent_problems,
)
from rule_compiler.cli.common import (
    Catalogs,
    CliError,
    actor_from_args,
    definition_files,
    issues_of,
    print_invalid,
    print_warnings,
    progress,
    read_catalog,
    store_from_args,
)
from rule_compiler.errors import DefinitionError, DefinitionLoadError, Issue, RuleValidationError, StoreError
from rule_compiler.json_schemas import export_schemas
from rule_compiler.loading import MAX_NESTING_DEPTH, nesting_depth, read_definition_file
from rule_compiler.registration import Compiled, register

if TYPE_CHECKING:
    from datetime import datetime

    from rule_compiler.definitions import Event
    from rule_compiler.rule_tester import RelatedReader

__all__ = ["CliError", "Path", "actor_from_args", "store_from_args"]
EXIT_OK, EXIT_INVALID, EXIT_ERROR = 0, 1, 2


def validate(args: argparse.Namespace) -> int:
    if getattr(args, "stored", False):
        if args.paths or args.catalog is not None or args.templates is not None:
            raise CliError(
                "--stored checks what the store holds against its catalogs: give no files, "
                "--catalog or --templates with it"
            )
        from rule_compiler.cli.stored import validate_stored

        return validate_stored(args)
    if getattr(args, "organization", None):
        raise CliError("--org is for --stored; a file names its own organization")
    if not args.paths:
        raise CliError("give the files or folders to check, or --stored to check the rule store")
    files = definition_files(args.paths)
    entries, _ = check_files(args, Catalogs(args), files)
    report: list[dict[str, Any]] = []
    bad = 0
    for index, entry in enumerate(entries, start=1):
        if entry.error is not None:
            bad += 1
            issues = issues_of(entry.error)
            report.append(
                {
                    "file": str(entry.path),
                    "valid": False,
                    "errors": [i.as_dict() for i in issues],
                    "warnings": [],
                }
            )
            if args.format == "text":
                print(progress(index, len(files)), end="")
                print_invalid(entry.path, entry.error)
            continue
        warnings = entry.compiled.warnings if entry.compiled is not None else ()
        report.append(
            {
                "file": str(entry.path),
                "valid": True,
                "errors": [],
                "warnings": [w.as_dict() for w in warnings],
            }
        )
        if args.format == "text":
            print(f"{progress(index, len(files))}✓ {entry.path}")
            print_warnings(entry.path, warnings)
    if args.format == "json":
        print(json.dumps(report, indent=2))
    else:
        print(f"{len(files) - bad} valid, {bad} invalid")
    return EXIT_INVALID if bad else EXIT_OK


def compile_one(args: argparse.Namespace) -> int:
    entries, _ = check_files(args, Catalogs(args), [args.path])
    entry = entries[0]
    if entry.error is not None:
        print_invalid(args.path, entry.error)
        return EXIT_INVALID
    compiled = entry.compiled
    assert compiled is not None  # noqa: S101 - no error means compiled
    print_warnings(args.path, compiled.warnings)
    if not isinstance(compiled, Compiled):  # a kind without a DAG: its canonical JSON
        data = {"kind": compiled.definition.kind, "spec_hash": compiled.spec_hash}
        print(json.dumps({**data, "template": json.loads(compiled.spec_json)}, indent=2, sort_keys=True))
        return EXIT_OK
    print(
        json.dumps(
            {"spec_hash": compiled.spec_hash, "spec": compiled.spec.to_data()}, indent=2, sort_keys=True
        )
    )
    return EXIT_OK


def apply(args: argparse.Namespace) -> int:
    """Validate everything first; store only when every file is valid (all or nothing).

    Condition and notification templates are stored first. Stored rules using a changed template are
    recompiled; when one of them would become invalid, nothing is stored.
    """
    catalogs = Catalogs(args)
    files = definition_files(args.paths)
    entries, source = check_files(args, catalogs, files)
    bad = [e for e in entries if e.error is not None]
    for index, entry in enumerate(entries, start=1):
        if entry.error is not None:
            print(progress(index, len(files)), end="")
            print_invalid(entry.path, entry.error)
    if bad:
        print(f"{len(bad)} of {len(files)} files are invalid; nothing was stored")
        return EXIT_INVALID
    for entry in entries:
        if entry.compiled is not None:
            print_warnings(entry.path, entry.compiled.warnings)
    dependents = dependents_of_batch(catalogs, entries, source)
    broken = print_dependent_problems(dependents)
    if broken:
        print(
            f"{broken} stored rule{'s' if broken != 1 else ''} would become invalid with these "
            "templates; nothing was stored"
        )
        return EXIT_INVALID
    if args.dry_run:
        extra = f", {len(dependents)} stored rules to recompile" if dependents else ""
        print(f"{len(files)} valid{extra} (dry run: nothing stored)")
        return EXIT_OK
    store, actor = store_from_args(args), actor_from_args(args)
    counts = Counts()
    try:
        for index, entry in enumerate(entries, start=1):
            assert entry.compiled is not None  # noqa: S101 - every entry is valid here
            result = register(store, entry.compiled, actor=actor)
            counts.add(result.status)
            print(
                f"{progress(index, len(entries))}{result.status:9} "
                f"{entry.compiled.dag_id} v{result.version} ({entry.path})"
            )
        for dependent in dependents:
            assert dependent.compiled is not None  # noqa: S101 - broken ones stopped us above
            result = register(store, dependent.compiled, actor=actor, active=dependent.stored.active)
            if result.status != "unchanged":
                counts.add("recompiled")
                uses = ", ".join(dependent.uses)
                print(f"recompiled {result.dag_id} v{result.version} (uses {uses})")
    except StoreError as exc:
        raise CliError(f"rule store: {exc}") from None
    print(counts.summary())
    return EXIT_OK


def list_definitions(args: argparse.Namespace) -> int:
    try:
        rows = store_from_args(args).list(organization=args.organization, include_deleted=args.all)
    except StoreError as exc:
        raise CliError(f"rule store: {exc}") from None
    if not rows:
        print("no definitions stored")
    for row in rows:
        state = "deleted" if getattr(row, "deleted_at", None) else ("active" if row.active else "inactive")
        print(f"{row.organization}/{row.name}  {row.kind}  v{row.current_version}  {state}  {row.dag_id}")
    return EXIT_OK


def export(args: argparse.Namespace) -> int:
    store = store_from_args(args)
    try:
        rows = store.list(organization=args.organization)
        for row in rows:
            stored = store.get(organization=row.organization, kind=row.kind, name=row.name)
            text = yaml.safe_dump(stored.source, sort_keys=False, allow_unicode=True)
            if args.out is None:
                print(f"---\n{text}", end="")
                continue
            target = args.out / row.organization / f"{row.name}.yaml"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
            print(f"wrote {target}", file=sys.stderr)
    except StoreError as exc:
        raise CliError(f"rule store: {exc}") from None
    return EXIT_OK


def test_rule(args: argparse.Namespace) -> int:
    """``test-rule``: 0 matched, 1 not matched or not triggered, 2 error (bad files, invalid rule/event)."""
    from rule_compiler import rule_tester

    try:
        data = read_definition_file(args.rule)
    except DefinitionLoadError as exc:
        raise CliError(str(exc)) from None
    catalogs = Catalogs(args)
    catalog = catalogs.for_org(data.get("organization"))
    try:
        compiled = DefinitionSource(args, []).compile(data, catalogs, source=str(args.rule))
        if not isinstance(compiled, Compiled):
            kind = compiled.definition.kind.replace("_", " ")
            raise RuleValidationError([Issue("kind", f"test-rule tests rules; this is a {kind}")])
    except DefinitionError as exc:
        issues = issues_of(exc)
        if args.format == "json":
            print(json.dumps({"valid": False, "errors": [i.as_dict() for i in issues]}, indent=2))
        else:
            print_invalid(args.rule, exc)
        print(f"error: {args.rule} is not a valid rule; nothing was tested", file=sys.stderr)
        return EXIT_ERROR
    print_warnings(args.rule, compiled.warnings)
    rule = compiled.rule
    if rule is None:
        raise CliError(f"{args.rule} is a {compiled.definition.kind}, not a rule; test-rule tests rules")
    event = read_event(args.event)
    now, related = tester_inputs(args)
    try:
        result = rule_tester.test_rule(
            rule, event, catalog=catalog or Catalog(organization=rule.organization), related=related, now=now
        )
    except rule_tester.RuleTestError as exc:
        raise CliError(str(exc)) from None
    if args.format == "json":
        print(json.dumps(result.as_dict(), indent=2, default=str))
    else:
        print(rule_tester.format_text(result))
    return EXIT_OK if result.matched else EXIT_INVALID


def tester_inputs(args: argparse.Namespace) -> tuple[datetime, RelatedReader | None]:
    """``--now`` and ``--connection`` of ``test-rule`` and ``test-workflow``: the time conditions read,
    and what reads related rows (None without ``--connection``)."""
    from rule_compiler import rule_tester

    try:
        now = rule_tester.parse_now(args.now)
    except ValueError:
        raise CliError(f"--now {args.now!r} is not an ISO date-time (e.g. 2026-11-20T12:00:00Z)") from None
    if not args.connection:
        return now, None
    engine_for = getattr(args, "engine_for", None)
    if engine_for is None:
        raise CliError(
            f"--connection {args.connection}: connections are Airflow's, and this command runs "
            "without Airflow (`python -m rule_compiler.cli`); use the `rule-compiler` command "
            "installed with the plugin (entry point rule_engine.console_script:main), or leave out "
            "--connection"
        )
    conn_id = args.connection
    return now, rule_tester.database_related(lambda _definition_conn: engine_for(conn_id))


def read_event(path: Path) -> Event:
    """The event file (JSON, or YAML by its suffix) as an :class:`Event`; CliError says what is wrong."""
    from rule_compiler import rule_tester

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"{path}: cannot read the event: {exc}") from None
    try:
        data = yaml.safe_load(text) if path.suffix in {".yaml", ".yml"} else json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(f"{path}:{exc.lineno}: the event is not valid JSON: {exc.msg}") from None
    except yaml.YAMLError as exc:
        raise CliError(f"{path}: the event is not valid YAML: {exc}") from None
    except RecursionError:  # nested thousands deep
        raise CliError(f"{path}: the event nests more than {MAX_NESTING_DEPTH} levels") from None
    if nesting_depth(data) > MAX_NESTING_DEPTH:
        raise CliError(f"{path}: the event nests more than {MAX_NESTING_DEPTH} levels")
    try:
        return rule_tester.load_event(data)
    except rule_tester.EventError as exc:
        raise CliError(f"{path}: {exc}") from None


#: The store revision that added the analytics rollups: an upgrade across it fills them from the log.
ROLLUPS_REVISION = "0008"
#: The one that added the report rollups: an upgrade across it (only) fills those from the report runs.
REPORT_ROLLUPS_REVISION = "0012"


def db_upgrade(args: argparse.Namespace) -> int:
    store = store_from_args(args)
    try:
        before = store.schema_revision()
        store.upgrade()
        if before is not None and before < ROLLUPS_REVISION:
            print("filling the analytics rollups from the automation log (store migration 0008)...")
            runs = store.rebuild_rollups()
            print(f"analytics rollups built from {runs} runs")
        elif before is not None and before < REPORT_ROLLUPS_REVISION:
            reports = store.rebuild_report_rollups()
            print(f"report analytics built from {reports} report runs (store migration 0012)")
    except StoreError as exc:
        raise CliError(f"rule store: {exc}") from None
    print("rule store is up to date")
    return EXIT_OK


def catalog_apply(args: argparse.Namespace) -> int:
    catalog = read_catalog(args.path)
    try:
        version = store_from_args(args).put_catalog(
            organization=catalog.organization,
            catalog=catalog.model_dump(mode="json"),
            actor=actor_from_args(args),
        )
    except StoreError as exc:
        raise CliError(f"rule store: {exc}") from None
    print(f"catalog of {catalog.organization}: version {version}")
    return EXIT_OK


def catalog_show(args: argparse.Namespace) -> int:
    try:
        raw = store_from_args(args).get_catalog(args.organization)
    except StoreError as exc:
        raise CliError(f"rule store: {exc}") from None
    if raw is None:
        raise CliError(
            f"organization '{args.organization}' has no catalog; apply one with "
            "`rule-compiler catalog apply FILE`"
        )
    print(yaml.safe_dump(raw, sort_keys=False), end="")
    return EXIT_OK


def catalog_grants(args: argparse.Namespace) -> int:
    """Print the statements that give a query role SELECT on the catalog's tables of a connection."""
    from rule_compiler.catalog_grants import GrantsError, grant_statements

    catalog = Catalogs(args).for_org(args.organization)
    if catalog is None:
        raise CliError(
            f"organization '{args.organization}' has no catalog; apply one with "
            "`rule-compiler catalog apply FILE` or give --catalog FILE"
        )
    if args.catalog is not None and catalog.organization != args.organization:
        raise CliError(f"{args.catalog} is the catalog of {catalog.organization}, not of {args.organization}")
    try:
        lines = grant_statements(
            catalog, args.connection, args.role, schema=args.schema, grant_to=args.grant_to
        )
    except GrantsError as exc:
        raise CliError(str(exc)) from None
    print("\n".join(lines))
    return EXIT_OK


def schema_export(args: argparse.Namespace) -> int:
    for path in export_schemas(args.out):
        print(f"wrote {path}")
    return EXIT_OK
