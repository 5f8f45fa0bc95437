"""``rule-compiler validate --stored``: check every stored definition against today's validation.

Validation gets stricter over time (author SQL, template limits, schedules, webhook URLs...), and a
definition stored before a check existed is not re-checked until it is applied again: it keeps
running as it was compiled, under the run-time guards. This command re-validates, per organization,
the current version of every stored (not deleted) definition — condition and notification templates
first, then rules and reports — against the current validation and the organization's stored catalog,
exactly as ``apply`` would, and lists those now refused with each problem's JSON path. It reads the
store and writes nothing.

Limits: a report's ``sql_file`` and ``template`` are read from today's include folder (as ``apply``
would), not from the text compiled into the stored spec; a rule is checked against the stored
templates that still parse (a refused template is listed itself, and so is a rule using it: the
template is unknown to it, and it is told which refused template that is).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from rule_compiler.catalog import Catalog
from rule_compiler.cli.batch import TEMPLATE_KINDS
from rule_compiler.cli.common import CliError, issues_of, store_from_args
from rule_compiler.definitions import ConditionTemplateDefinition, NotificationTemplateDefinition
from rule_compiler.dependents import uses_of
from rule_compiler.errors import DefinitionError, Issue, StoreError
from rule_compiler.kinds import CONDITION_TEMPLATE, KINDS, NOTIFICATION_TEMPLATE
from rule_compiler.registration import compile_document
from rule_compiler.store import RuleStore, StoredDefinition
from rule_compiler.validation.structural import issues_from_pydantic

EXIT_OK, EXIT_INVALID = 0, 1
#: What the summary says about refused definitions, and what to do.
ADVICE = (
    "Refused definitions keep running as they were compiled, under the run-time guards, until they "
    "are fixed: correct each one and apply it again (`rule-compiler apply FILE`), or deactivate it."
)


@dataclass
class Checked:
    """One stored definition (or catalog, ``kind`` ``catalog``) and what today's validation says."""

    organization: str
    kind: str
    name: str
    version: int | None
    dag_id: str | None = None
    active: bool | None = None
    errors: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)

    @property
    def label(self) -> str:
        if self.kind == "catalog":
            return f"catalog of {self.organization} (v{self.version})"
        state = "" if self.active is None else (", active" if self.active else ", inactive")
        return f"{self.kind} {self.organization}/{self.name} (v{self.version}{state})"

    def as_dict(self) -> dict[str, Any]:
        return {
            "organization": self.organization,
            "kind": self.kind,
            "name": self.name,
            "version": self.version,
            "dag_id": self.dag_id,
            "active": self.active,
            "valid": not self.errors,
            "errors": [issue.as_dict() for issue in self.errors],
            "warnings": [issue.as_dict() for issue in self.warnings],
        }


@dataclass
class StoredCheck:
    """Everything ``validate --stored`` found."""

    definitions: list[Checked] = field(default_factory=list)
    catalogs: list[Checked] = field(default_factory=list)

    @property
    def refused(self) -> list[Checked]:
        return [item for item in self.definitions if item.errors]

    @property
    def refused_catalogs(self) -> list[Checked]:
        return [item for item in self.catalogs if item.errors]

    def as_dict(self) -> dict[str, Any]:
        return {
            "checked": len(self.definitions),
            "refused": len(self.refused),
            "catalogs_checked": len(self.catalogs),
            "catalogs_refused": len(self.refused_catalogs),
            "definitions": [item.as_dict() for item in self.definitions],
            "catalogs": [item.as_dict() for item in self.catalogs],
        }


def check_stored(store: RuleStore, organization: str | None = None) -> StoredCheck:
    """Re-validate the current version of every stored definition (of ``organization``, or all)."""
    try:
        rows = store.list(organization=organization)
    except StoreError as exc:
        raise CliError(f"rule store: {exc}") from None
    result = StoredCheck()
    for org in sorted({row.organization for row in rows}):
        kinds = sorted({row.kind for row in rows if row.organization == org})
        _check_organization(store, org, kinds, result)
    return result


def _check_organization(store: RuleStore, organization: str, kinds: list[str], result: StoredCheck) -> None:
    try:
        stored = [row for kind in kinds for row in store.definitions_of_kind(organization, kind)]
        raw_catalog = store.get_catalog(organization)
        catalog_version = store.catalog_version(organization)
    except StoreError as exc:
        raise CliError(f"rule store: {exc}") from None
    catalog: Catalog | None = None
    if raw_catalog is not None:
        checked = Checked(organization, "catalog", organization, catalog_version)
        try:
            catalog = Catalog.model_validate(raw_catalog)
        except ValidationError as exc:
            checked.errors = issues_from_pydantic(exc, raw_catalog)
        result.catalogs.append(checked)
    parsed = {kind: _parse(stored, kind) for kind in TEMPLATE_KINDS}
    unparsed = {
        (row.kind, row.name)
        for row in stored
        if row.kind in TEMPLATE_KINDS and row.name not in parsed[row.kind]
    }
    templates, notifications = parsed[CONDITION_TEMPLATE], parsed[NOTIFICATION_TEMPLATE]
    names = {kind: {row.name: row.source for row in stored if row.kind == kind} for kind in KINDS}
    stored.sort(key=lambda row: (row.kind not in TEMPLATE_KINDS, row.kind, row.name))
    for row in stored:
        checked = Checked(organization, row.kind, row.name, row.version, row.dag_id, _active(row))
        needs_catalog = row.kind in KINDS and KINDS[row.kind].catalog
        if raw_catalog is not None and catalog is None and needs_catalog:
            message = "cannot be checked: the organization's stored catalog is refused (listed below)"
            checked.errors = [Issue("(catalog)", message, "catalog")]
        else:
            checked.errors, checked.warnings = _check(
                row, catalog, templates, notifications, names, parsed=parsed
            )
            checked.errors += _uses_refused(row, unparsed) if checked.errors else []
        result.definitions.append(checked)


def _check(
    row: StoredDefinition,
    catalog: Catalog | None,
    templates: Mapping[str, ConditionTemplateDefinition],
    notifications: Mapping[str, NotificationTemplateDefinition],
    names: Mapping[str, Mapping[str, Any]],
    *,
    parsed: Mapping[str, Any],
) -> tuple[list[Issue], list[Issue]]:
    """The problems (and warnings) today's validation finds in a stored definition (``names``: the
    organization's stored definitions by kind, what its actions may start; ``parsed``: its templates
    of every kind, what ``use`` may name)."""
    source = f"stored {row.kind} {row.organization}/{row.name} v{row.version}"
    try:
        compiled = compile_document(
            row.source,
            catalog if row.kind in KINDS and KINDS[row.kind].catalog else None,
            templates=templates,
            notification_templates=notifications,
            stored=names,
            definition_templates=parsed,
            source=source,
        )
    except DefinitionError as exc:
        return issues_of(exc), []
    except Exception as exc:  # one definition the checks choke on must not stop the rest
        return [Issue("(document)", f"could not be checked: {type(exc).__name__}: {exc}", "error")], []
    warnings = list(getattr(compiled, "warnings", ()) or ())
    return [], warnings


def _uses_refused(row: StoredDefinition, unparsed: set[tuple[str, str]]) -> list[Issue]:
    """Why a rule naming a stored template that no longer parses is told the template is unknown."""
    uses = uses_of(row)
    return [
        Issue(
            "(document)",
            f"uses the stored {kind.replace('_', ' ')} '{name}', which is refused itself (listed too): "
            "fix and apply the template first",
            "template_refused",
        )
        for kind, name in sorted(uses & unparsed)
    ]


def _parse(stored: list[StoredDefinition], kind: str) -> dict[str, Any]:
    """The organization's stored templates of ``kind`` that still parse, by name (as ``apply`` reads
    them for the definitions that use them)."""
    parsed: dict[str, Any] = {}
    for row in stored:
        if row.kind != kind:
            continue
        try:
            parsed[row.name] = KINDS[kind].model.model_validate(row.source)
        except ValidationError:
            continue  # refused: listed with its own problems
    return parsed


def _active(row: StoredDefinition) -> bool | None:
    return row.active if row.kind in KINDS and KINDS[row.kind].activatable else None


def validate_stored(args: argparse.Namespace) -> int:
    """``validate --stored [--org ORG] [--format json]``: 1 when any stored definition (or catalog)
    is refused by today's validation, else 0. Nothing is modified."""
    result = check_stored(store_from_args(args), getattr(args, "organization", None))
    if args.format == "json":
        print(json.dumps(result.as_dict(), indent=2))
    else:
        _print_text(result)
    return EXIT_INVALID if result.refused or result.refused_catalogs else EXIT_OK


def _print_text(result: StoredCheck) -> None:
    for item in [*result.refused, *result.refused_catalogs]:
        count = len(item.errors)
        print(f"✗ {item.label}: {count} problem{'s' if count != 1 else ''}")
        for issue in item.errors:
            print(f"    {issue.path}: {issue.message}")
    if not result.definitions:
        print("no definitions stored")
        return
    summary = f"{len(result.definitions)} checked, {len(result.refused)} refused"
    if result.refused_catalogs:
        summary += f"; {len(result.refused_catalogs)} of {len(result.catalogs)} catalogs refused"
    print(summary)
    if result.refused or result.refused_catalogs:
        print(ADVICE)
