"""Checking a batch of definition files that mixes rules, condition templates and notification templates.

Templates are checked first; rules then see, per organization and kind, the store's templates,
overridden by ``--templates DIR``, overridden by the batch's. ``apply`` also recompiles the stored
rules of an organization that use (directly or through other condition templates) a template the batch
changes.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from rule_compiler.cli.common import Catalogs, CliError, print_invalid, store_from_args
from rule_compiler.condition_templates import used_templates
from rule_compiler.definitions import (
    ConditionTemplateDefinition,
    NotificationTemplateDefinition,
    RuleDefinition,
)
from rule_compiler.definitions.conditions import template_uses
from rule_compiler.errors import DefinitionError, DefinitionLoadError, StoreError
from rule_compiler.loading import expand_paths, read_definition_file
from rule_compiler.notification_templates import (
    NOTIFICATION_TEMPLATE_KIND,
    raw_notification_uses,
    used_notification_templates,
)
from rule_compiler.registration import (
    TEMPLATE_KIND,
    TEMPLATE_KINDS,
    Compiled,
    CompiledTemplate,
    compile_document,
)
from rule_compiler.store import StoredDefinition

TemplateMap = dict[str, ConditionTemplateDefinition]
NotificationMap = dict[str, NotificationTemplateDefinition]


@dataclass
class Entry:
    """One file of the batch: its document, and either its compiled form or why it is invalid."""

    path: Path
    data: dict[str, Any] | None = None
    compiled: Compiled | CompiledTemplate | None = None
    error: DefinitionError | None = None


@dataclass
class Dependent:
    """A stored rule that uses a changed template, recompiled (or the problems it now has)."""

    stored: StoredDefinition
    uses: list[str]
    compiled: Compiled | None = None
    error: DefinitionError | None = None


def raw_uses(data: dict[str, Any]) -> set[str]:
    """Template names a raw document's condition trees name in ``use`` (before any parsing)."""
    trees: list[Any] = [data.get("conditions"), data.get("condition")]
    actions = data.get("actions")
    if isinstance(actions, list):
        trees += [a.get("where") for a in actions if isinstance(a, dict)]
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("use"), str):
                found.add(node["use"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for tree in trees:
        walk(tree)
    return found


def _template_uses(template: ConditionTemplateDefinition) -> set[str]:
    return {use.use for _, use in template_uses(template.condition, "condition")}


def _parse_templates(documents: Iterable[dict[str, Any]]) -> dict[str, TemplateMap]:
    """Condition templates (by organization, then name) among documents, leaving out unparsable ones."""
    out: dict[str, TemplateMap] = {}
    for data in documents:
        if data.get("kind") != TEMPLATE_KIND:
            continue
        try:
            template = ConditionTemplateDefinition.model_validate(data)
        except ValidationError:
            continue
        out.setdefault(template.organization, {})[template.name] = template
    return out


def _parse_notification_templates(documents: Iterable[dict[str, Any]]) -> dict[str, NotificationMap]:
    """Notification templates (by organization, then name) among documents, like :func:`_parse_templates`."""
    out: dict[str, NotificationMap] = {}
    for data in documents:
        if data.get("kind") != NOTIFICATION_TEMPLATE_KIND:
            continue
        try:
            template = NotificationTemplateDefinition.model_validate(data)
        except ValidationError:
            continue
        out.setdefault(template.organization, {})[template.name] = template
    return out


class TemplateSource:
    """Templates by organization: the store's, then ``--templates DIR``, then the batch's (per kind)."""

    def __init__(self, args: argparse.Namespace, batch: Iterable[dict[str, Any]]) -> None:
        self._args = args
        documents = list(batch)
        self._batch = _parse_templates(documents)
        self._batch_notifications = _parse_notification_templates(documents)
        folder = getattr(args, "templates", None)
        folder_documents = self._read_folder(folder) if folder is not None else []
        self._dir = _parse_templates(folder_documents)
        self._dir_notifications = _parse_notification_templates(folder_documents)
        self._stored: dict[str, TemplateMap] = {}
        self._stored_notifications: dict[str, NotificationMap] = {}
        self.stored_hashes: dict[str, dict[str, str]] = {}
        self.stored_notification_hashes: dict[str, dict[str, str]] = {}

    @staticmethod
    def _read_folder(folder: Path) -> list[dict[str, Any]]:
        if not folder.is_dir():
            raise CliError(f"--templates {folder}: no such folder")
        try:
            return [read_definition_file(p) for p in expand_paths([folder])]
        except DefinitionLoadError as exc:
            raise CliError(f"--templates: {exc}") from None

    def _rows(self, organization: str, kind: str) -> list[StoredDefinition]:
        try:
            return store_from_args(self._args).definitions_of_kind(organization, kind)
        except StoreError as exc:
            raise CliError(f"cannot read {kind.replace('_', ' ')}s from the rule store: {exc}") from None

    def stored(self, organization: str) -> TemplateMap:
        """The organization's stored condition templates (read once)."""
        if organization not in self._stored:
            rows = self._rows(organization, TEMPLATE_KIND)
            self._stored[organization] = {
                row.name: ConditionTemplateDefinition.model_validate(row.source) for row in rows
            }
            self.stored_hashes[organization] = {row.name: row.spec_hash for row in rows}
        return self._stored[organization]

    def stored_notifications(self, organization: str) -> NotificationMap:
        """The organization's stored notification templates (read once)."""
        if organization not in self._stored_notifications:
            rows = self._rows(organization, NOTIFICATION_TEMPLATE_KIND)
            self._stored_notifications[organization] = {
                row.name: NotificationTemplateDefinition.model_validate(row.source) for row in rows
            }
            self.stored_notification_hashes[organization] = {row.name: row.spec_hash for row in rows}
        return self._stored_notifications[organization]

    def for_org(self, organization: Any, needed: set[str] | None = None) -> TemplateMap:
        """The templates ``organization`` may use; the store is read only when ``needed`` asks for more."""
        if not isinstance(organization, str):
            return {}
        local = {**self._dir.get(organization, {}), **self._batch.get(organization, {})}
        if needed is not None:
            wanted, seen = set(needed), set[str]()
            while wanted - seen:
                name = (wanted - seen).pop()
                seen.add(name)
                if name in local:
                    wanted |= _template_uses(local[name])
            if wanted <= local.keys():
                return local
        return {**self.stored(organization), **local}

    def notifications_for_org(self, organization: Any, needed: set[str] | None = None) -> NotificationMap:
        """The notification templates ``organization`` may use; the store is read only when needed."""
        if not isinstance(organization, str):
            return {}
        local = {
            **self._dir_notifications.get(organization, {}),
            **self._batch_notifications.get(organization, {}),
        }
        if needed is not None and needed <= local.keys():
            return local
        return {**self.stored_notifications(organization), **local}


def check_files(
    args: argparse.Namespace, catalogs: Catalogs, files: list[Path]
) -> tuple[list[Entry], TemplateSource]:
    """Read and check every file: templates first, then the rest, each group in file order."""
    entries = [Entry(path) for path in files]
    for entry in entries:
        try:
            entry.data = read_definition_file(entry.path)
        except DefinitionLoadError as exc:
            entry.error = exc
    source = TemplateSource(args, [e.data for e in entries if e.data is not None])
    entries.sort(key=lambda e: 0 if e.data is not None and e.data.get("kind") in TEMPLATE_KINDS else 1)
    for entry in entries:
        if entry.data is None:
            continue
        org = entry.data.get("organization")
        is_template = entry.data.get("kind") in TEMPLATE_KINDS
        try:
            entry.compiled = compile_document(
                entry.data,
                None if is_template else catalogs.for_org(org),
                templates=source.for_org(org, raw_uses(entry.data)),
                notification_templates=source.notifications_for_org(org, raw_notification_uses(entry.data)),
                source=str(entry.path),
            )
        except DefinitionError as exc:
            entry.error = exc
    return entries, source


def find_dependents(
    args: argparse.Namespace, catalogs: Catalogs, entries: list[Entry], source: TemplateSource
) -> list[Dependent]:
    """Stored rules using a template the batch changes, each recompiled with the new templates."""
    templates = [e.compiled for e in entries if isinstance(e.compiled, CompiledTemplate)]
    batch_rules = {
        (e.compiled.definition.organization, e.compiled.definition.name)
        for e in entries
        if isinstance(e.compiled, Compiled)
    }
    dependents: list[Dependent] = []
    for org in sorted({t.definition.organization for t in templates}):
        merged = source.for_org(org)
        notifications = source.notifications_for_org(org)
        old = {
            TEMPLATE_KIND: source.stored_hashes.get(org, {}),
            NOTIFICATION_TEMPLATE_KIND: source.stored_notification_hashes.get(org, {}),
        }
        changed = {
            (t.definition.kind, t.definition.name)
            for t in templates
            if t.definition.organization == org
            and old[t.definition.kind].get(t.definition.name) != t.spec_hash
        }
        if not changed:
            continue
        affected = _users_of({name for kind, name in changed if kind == TEMPLATE_KIND}, merged)
        changed_notifications = {name for kind, name in changed if kind == NOTIFICATION_TEMPLATE_KIND}
        try:
            stored_rules = store_from_args(args).definitions_of_kind(org, "rule")
        except StoreError as exc:
            raise CliError(f"rule store: {exc}") from None
        for stored in stored_rules:
            if (org, stored.name) in batch_rules:
                continue
            rule = RuleDefinition.model_validate(stored.source)
            uses = sorted(
                (used_templates(rule) & affected)
                | (used_notification_templates(rule) & changed_notifications)
            )
            if not uses:
                continue
            dependent = Dependent(stored, uses)
            try:
                compiled = compile_document(
                    stored.source,
                    catalogs.for_org(org),
                    templates=merged,
                    notification_templates=notifications,
                )
                assert isinstance(compiled, Compiled)  # noqa: S101 - a stored rule is a rule
                dependent.compiled = compiled
            except DefinitionError as exc:
                dependent.error = exc
            dependents.append(dependent)
    return dependents


def _users_of(changed: set[str], templates: TemplateMap) -> set[str]:
    """The changed templates and every template using one of them, directly or not."""
    affected = set(changed)
    grew = True
    while grew:
        users = {name for name, t in templates.items() if _template_uses(t) & affected}
        grew = not users <= affected
        affected |= users
    return affected


def print_dependent_problems(dependents: list[Dependent]) -> int:
    """Print the stored rules that a template change breaks; how many there are."""
    broken = [d for d in dependents if d.error is not None]
    for dependent in broken:
        stored = dependent.stored
        uses = ", ".join(f"'{name}'" for name in dependent.uses)
        label = Path(f"stored rule {stored.organization}/{stored.name} (uses template {uses})")
        assert dependent.error is not None  # noqa: S101 - filtered above
        print_invalid(label, dependent.error)
    return len(broken)


@dataclass
class Counts:
    """Results of a store run, by status."""

    by_status: dict[str, int] = field(default_factory=dict)

    def add(self, status: str) -> None:
        self.by_status[status] = self.by_status.get(status, 0) + 1

    def summary(self) -> str:
        return ", ".join(f"{n} {status}" for status, n in sorted(self.by_status.items()))
