"""The CLI's commands: each takes parsed arguments and returns an exit code."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import ValidationError

from rule_compiler.catalog import Catalog
from rule_compiler.errors import DefinitionError, DefinitionLoadError, RuleValidationError, StoreError
from rule_compiler.loading import expand_paths, read_definition_file
from rule_compiler.registration import compile_document, register
from rule_compiler.schema_export import export_schemas
from rule_compiler.store import RuleStore

if TYPE_CHECKING:
    from rule_compiler.definitions import Event

__all__ = ["CliError", "Path"]
EXIT_OK, EXIT_INVALID, EXIT_ERROR = 0, 1, 2
#: Above this many files, progress is shown as a counter.
PROGRESS_THRESHOLD = 10


class CliError(Exception):
    """A usage or environment problem (exit code 2)."""


def store_from_args(args: argparse.Namespace) -> RuleStore:
    return RuleStore(args.store)


def actor_from_args(args: argparse.Namespace) -> str:
    return str(getattr(args, "actor", None) or os.environ.get("USER") or getpass.getuser() or "cli")


class _Catalogs:
    """Catalogs by organization: from ``--catalog``, else from the store (read once each)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self._file: Catalog | None = _read_catalog(args.catalog) if getattr(args, "catalog", None) else None
        self._args = args
        self._cache: dict[str, Catalog | None] = {}

    def for_org(self, organization: Any) -> Catalog | None:
        if self._file is not None:
            return self._file
        if not isinstance(organization, str):
            return None
        if organization not in self._cache:
            try:
                raw = store_from_args(self._args).get_catalog(organization)
            except StoreError as exc:
                raise CliError(f"cannot read the catalog from the rule store: {exc}") from None
            self._cache[organization] = Catalog.model_validate(raw) if raw is not None else None
        return self._cache[organization]


def _read_catalog(path: Path) -> Catalog:
    try:
        data = read_definition_file(path)
        return Catalog.model_validate(data)
    except DefinitionLoadError as exc:
        raise CliError(str(exc)) from None
    except ValidationError as exc:
        raise CliError(f"{path}: not a valid catalog:\n{exc}") from None


def _files(paths: list[Path]) -> list[Path]:
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise CliError(f"no such file or folder: {', '.join(missing)}")
    files = expand_paths(paths)
    if not files:
        raise CliError("no .yaml, .yml or .json files found")
    return files


def _progress(index: int, total: int) -> str:
    return f"[{index}/{total}] " if total > PROGRESS_THRESHOLD else ""


def _print_invalid(path: Path, exc: DefinitionError) -> None:
    issues = exc.issues if isinstance(exc, RuleValidationError) else [exc.issue]  # type: ignore[attr-defined]
    where = f"{path}:{exc.line}" if isinstance(exc, DefinitionLoadError) and exc.line else str(path)
    print(f"✗ {where}: {len(issues)} problem{'s' if len(issues) != 1 else ''}")
    for issue in issues:
        print(f"    {issue.path}: {issue.message}")


def validate(args: argparse.Namespace) -> int:
    catalogs = _Catalogs(args)
    files = _files(args.paths)
    report: list[dict[str, Any]] = []
    bad = 0
    for index, path in enumerate(files, start=1):
        try:
            data = read_definition_file(path)
            compile_document(data, catalogs.for_org(data.get("organization")), source=str(path))
        except DefinitionError as exc:
            bad += 1
            issues = exc.issues if isinstance(exc, RuleValidationError) else [exc.issue]  # type: ignore[attr-defined]
            report.append({"file": str(path), "valid": False, "errors": [i.as_dict() for i in issues]})
            if args.format == "text":
                print(_progress(index, len(files)), end="")
                _print_invalid(path, exc)
            continue
        report.append({"file": str(path), "valid": True, "errors": []})
        if args.format == "text":
            print(f"{_progress(index, len(files))}✓ {path}")
    if args.format == "json":
        print(json.dumps(report, indent=2))
    else:
        print(f"{len(files) - bad} valid, {bad} invalid")
    return EXIT_INVALID if bad else EXIT_OK


def compile_one(args: argparse.Namespace) -> int:
    catalogs = _Catalogs(args)
    try:
        data = read_definition_file(args.path)
        compiled = compile_document(data, catalogs.for_org(data.get("organization")), source=str(args.path))
    except DefinitionError as exc:
        _print_invalid(args.path, exc)
        return EXIT_INVALID
    print(
        json.dumps(
            {"spec_hash": compiled.spec_hash, "spec": compiled.spec.to_data()}, indent=2, sort_keys=True
        )
    )
    return EXIT_OK


def apply(args: argparse.Namespace) -> int:
    """Validate everything first; store only when every file is valid (all or nothing)."""
    catalogs = _Catalogs(args)
    files = _files(args.paths)
    compiled, bad = [], 0
    for index, path in enumerate(files, start=1):
        try:
            data = read_definition_file(path)
            compiled.append(
                (path, compile_document(data, catalogs.for_org(data.get("organization")), source=str(path)))
            )
        except DefinitionError as exc:
            bad += 1
            print(_progress(index, len(files)), end="")
            _print_invalid(path, exc)
    if bad:
        print(f"{bad} of {len(files)} files are invalid; nothing was stored")
        return EXIT_INVALID
    if args.dry_run:
        print(f"{len(files)} valid (dry run: nothing stored)")
        return EXIT_OK
    store, actor = store_from_args(args), actor_from_args(args)
    counts: dict[str, int] = {}
    try:
        for index, (path, item) in enumerate(compiled, start=1):
            result = register(store, item, actor=actor)
            counts[result.status] = counts.get(result.status, 0) + 1
            print(
                f"{_progress(index, len(compiled))}{result.status:9} "
                f"{item.spec.dag_id} v{result.version} ({path})"
            )
    except StoreError as exc:
        raise CliError(f"rule store: {exc}") from None
    print(", ".join(f"{n} {status}" for status, n in sorted(counts.items())))
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
    catalog = _Catalogs(args).for_org(data.get("organization"))
    try:
        compiled = compile_document(data, catalog, source=str(args.rule))
    except DefinitionError as exc:
        issues = exc.issues if isinstance(exc, RuleValidationError) else [exc.issue]  # type: ignore[attr-defined]
        if args.format == "json":
            print(json.dumps({"valid": False, "errors": [i.as_dict() for i in issues]}, indent=2))
        else:
            _print_invalid(args.rule, exc)
        print(f"error: {args.rule} is not a valid rule; nothing was tested", file=sys.stderr)
        return EXIT_ERROR
    rule = compiled.definition
    event = _read_event(args.event)
    try:
        now = rule_tester.parse_now(args.now)
    except ValueError:
        raise CliError(f"--now {args.now!r} is not an ISO date-time (e.g. 2026-11-20T12:00:00Z)") from None
    related = None
    if args.connection:
        engine_for = getattr(args, "engine_for", None)
        if engine_for is None:
            raise CliError(
                f"--connection {args.connection}: connections are Airflow's, and this command runs "
                "without Airflow (`python -m rule_compiler.cli`); use the `rule-compiler` command "
                "installed with the plugin (entry point rule_engine.cli:main), or leave out --connection"
            )
        conn_id = args.connection
        related = rule_tester.database_related(lambda _rule_conn: engine_for(conn_id))
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


def _read_event(path: Path) -> Event:
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
    try:
        return rule_tester.load_event(data)
    except rule_tester.EventError as exc:
        raise CliError(f"{path}: {exc}") from None


def db_upgrade(args: argparse.Namespace) -> int:
    try:
        store_from_args(args).upgrade()
    except StoreError as exc:
        raise CliError(f"rule store: {exc}") from None
    print("rule store is up to date")
    return EXIT_OK


def catalog_apply(args: argparse.Namespace) -> int:
    catalog = _read_catalog(args.path)
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


def schema_export(args: argparse.Namespace) -> int:
    for path in export_schemas(args.out):
        print(f"wrote {path}")
    return EXIT_OK
