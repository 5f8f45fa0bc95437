"""Checking a batch of definition files of every kind (rules, reports, condition and notification
templates).

Kinds without a DAG (the templates) are checked first; the rest then see, per organization and kind,
the store's templates, overridden by ``--templates DIR``, overridden by the batch's. ``apply`` also
recompiles the stored definitions of an organization that use (directly or through other condition
templates) a template the batch changes (:mod:`rule_compiler.dependents`).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from rule_compiler.cli.common import Catalogs, CliError, print_invalid, store_from_args
from rule_compiler.dependents import Dependent, find_dependents
from rule_compiler.errors import DefinitionError, DefinitionLoadError, StoreError
from rule_compiler.kinds import CONDITION_TEMPLATE, KINDS, NOTIFICATION_TEMPLATE, WORKFLOW, Ref
from rule_compiler.loading import expand_paths, read_definition_file
from rule_compiler.raw_sources import may_assign
from rule_compiler.registration import Compiled, CompiledTemplate, compile_in
from rule_compiler.store import StoredDefinition
from rule_compiler.validation.kind_checks import CheckContext

#: The kinds a batch's documents are checked against when they name one (by name, inline-expanded).
TEMPLATE_KINDS = tuple(name for name, kind in KINDS.items() if not kind.has_dag)
Parsed = dict[str, BaseModel]

__all__ = ["Counts", "DefinitionSource", "Dependent", "Entry", "check_files", "dependents_of_batch"]


@dataclass
class Entry:
    """One file of the batch: its document, and either its compiled form or why it is invalid."""

    path: Path
    data: dict[str, Any] | None = None
    compiled: Compiled | CompiledTemplate | None = None
    error: DefinitionError | None = None


def _parse(documents: Iterable[dict[str, Any]]) -> dict[tuple[str, str], Parsed]:
    """Templates among ``documents`` by (organization, kind), then name; unparsable ones left out."""
    out: dict[tuple[str, str], Parsed] = {}
    for data in documents:
        kind = data.get("kind")
        if kind not in TEMPLATE_KINDS:
            continue
        try:
            parsed = KINDS[kind].model.model_validate(data)
        except ValidationError:
            continue
        out.setdefault((parsed.organization, kind), {})[parsed.name] = parsed
    return out


class DefinitionSource:
    """Templates by organization and kind: the store's, then ``--templates DIR``, then the batch's; and
    the names of stored definitions an action may start. The store is read once per need."""

    def __init__(self, args: argparse.Namespace, batch: Iterable[dict[str, Any]]) -> None:
        self._args = args
        documents = list(batch)
        self._batch = _parse(documents)
        self._batch_docs = {(d.get("organization"), d.get("kind"), d.get("name")): d for d in documents}
        folder = getattr(args, "templates", None)
        self._dir = _parse(self._read_folder(folder)) if folder is not None else {}
        self._stored: dict[tuple[str, str], list[StoredDefinition]] = {}
        self._members: dict[str, set[str]] = {}

    @staticmethod
    def _read_folder(folder: Path) -> list[dict[str, Any]]:
        if not folder.is_dir():
            raise CliError(f"--templates {folder}: no such folder")
        try:
            return [read_definition_file(p) for p in expand_paths([folder])]
        except DefinitionLoadError as exc:
            raise CliError(f"--templates: {exc}") from None

    def rows(self, organization: str, kind: str) -> list[StoredDefinition]:
        """The organization's stored definitions of ``kind`` (read once)."""
        if (organization, kind) not in self._stored:
            try:
                rows = store_from_args(self._args).definitions_of_kind(organization, kind)
            except StoreError as exc:
                raise CliError(f"cannot read {kind.replace('_', ' ')}s from the rule store: {exc}") from None
            self._stored[(organization, kind)] = rows
        return self._stored[(organization, kind)]

    def stored_hashes(self, organization: str, kind: str) -> dict[str, str]:
        """name → spec hash of the organization's stored ``kind`` definitions."""
        return {row.name: row.spec_hash for row in self.rows(organization, kind)}

    def _local(self, organization: str, kind: str) -> Parsed:
        return {**self._dir.get((organization, kind), {}), **self._batch.get((organization, kind), {})}

    def templates(self, organization: Any, kind: str, needed: set[str] | None = None) -> Parsed:
        """The ``kind`` templates ``organization`` may use; the store is read only when ``needed`` (the
        names a document uses, followed through the local condition templates) asks for more."""
        if not isinstance(organization, str):
            return {}
        local = self._local(organization, kind)
        if needed is not None:
            wanted, seen = set(needed), set[str]()
            while wanted - seen:
                name = (wanted - seen).pop()
                seen.add(name)
                if name in local:
                    source = local[name].model_dump(mode="json", by_alias=True)
                    wanted |= {used for used_kind, used in KINDS[kind].uses(source) if used_kind == kind}
            if wanted <= local.keys():
                return local
        model = KINDS[kind].model
        stored = {row.name: model.model_validate(row.source) for row in self.rows(organization, kind)}
        return {**stored, **local}

    def for_org(self, organization: Any, needed: set[str] | None = None) -> Any:
        """The condition templates ``organization`` may use (see :meth:`templates`)."""
        return self.templates(organization, CONDITION_TEMPLATE, needed)

    def notifications_for_org(self, organization: Any, needed: set[str] | None = None) -> Any:
        """The notification templates ``organization`` may use (see :meth:`templates`)."""
        return self.templates(organization, NOTIFICATION_TEMPLATE, needed)

    def stored_names(self, organization: Any, kinds: set[str]) -> dict[str, dict[str, Any]] | None:
        """kind → name → source of ``organization``'s stored and batch definitions of those kinds (a
        batch's over the stored; None: none asked for, so the store is not read)."""
        if not kinds or not isinstance(organization, str):
            return None
        names: dict[str, dict[str, Any]] = {}
        for kind in sorted(kinds):
            names[kind] = {row.name: row.source for row in self.rows(organization, kind)}
            names[kind].update(
                (str(name), doc)
                for (org, k, name), doc in self._batch_docs.items()
                if org == organization and k == kind and name
            )
        return names

    def compile(self, data: dict[str, Any], catalogs: Catalogs, *, source: str | None = None) -> Any:
        """Validate and compile one document against its organization's templates and catalog."""
        return compile_in(data, self.context(data, catalogs), source=source)

    def context(self, data: dict[str, Any], catalogs: Catalogs) -> CheckContext:
        """What one document is checked against: its catalog, the templates and stored definitions it
        uses (those a template it is built from uses too)."""
        organization = data.get("organization")
        kind = KINDS.get(str(data.get("kind")))
        uses = kind.uses(data) if kind is not None else set()
        definition_templates: dict[str, Any] = {}
        if kind is not None and kind.template is not None and (kind.template, data.get("use")) in uses:
            # built from a template: it also uses what the template's body names
            found = self.templates(organization, kind.template, {str(data["use"])})
            definition_templates[kind.template] = found
            if (template := found.get(str(data["use"]))) is not None:
                uses |= KINDS[kind.template].uses(template.model_dump(mode="json", by_alias=True))
        needed = {used_kind: {name for k, name in uses if k == used_kind} for used_kind in TEMPLATE_KINDS}
        return CheckContext(
            catalogs.for_org(organization) if kind is not None and kind.catalog else None,
            self.for_org(organization, needed[CONDITION_TEMPLATE]),
            self.notifications_for_org(organization, needed[NOTIFICATION_TEMPLATE]),
            self.stored_names(organization, {k for k, _ in uses if k not in TEMPLATE_KINDS}),
            definition_templates,
            self.members(organization)
            if kind is not None and kind.name == WORKFLOW and may_assign(data)
            else None,
        )

    def members(self, organization: Any) -> set[str] | None:
        """The user names of ``organization``'s members (what approvals may assign), read once; None
        when the store cannot say (then a warning says registration checks the assignees)."""
        if not isinstance(organization, str):
            return None
        if organization not in self._members:
            try:
                found = store_from_args(self._args).list_memberships(organization)
            except StoreError:
                return None
            self._members[organization] = {membership.username for membership in found}
        return self._members[organization]


def check_files(
    args: argparse.Namespace, catalogs: Catalogs, files: list[Path]
) -> tuple[list[Entry], DefinitionSource]:
    """Read and check every file: templates first, then the rest, each group in file order."""
    entries = [Entry(path) for path in files]
    for entry in entries:
        try:
            entry.data = read_definition_file(entry.path)
        except DefinitionLoadError as exc:
            entry.error = exc
    source = DefinitionSource(args, [e.data for e in entries if e.data is not None])
    entries.sort(key=lambda e: 0 if e.data is not None and e.data.get("kind") in TEMPLATE_KINDS else 1)
    for entry in entries:
        if entry.data is None:
            continue
        try:
            entry.compiled = source.compile(entry.data, catalogs, source=str(entry.path))
        except DefinitionError as exc:
            entry.error = exc
    return entries, source


def dependents_of_batch(
    catalogs: Catalogs, entries: list[Entry], source: DefinitionSource
) -> list[Dependent]:
    """Stored definitions using a template the batch changes, each recompiled with the new templates."""
    templates = [e.compiled for e in entries if isinstance(e.compiled, CompiledTemplate)]
    in_batch = {(e.compiled.definition.organization, e.compiled.definition.kind, e.compiled.definition.name)
                for e in entries if e.compiled is not None}  # fmt: skip
    found: list[Dependent] = []
    for org in sorted({t.definition.organization for t in templates}):
        changed: set[Ref] = {
            (t.definition.kind, t.definition.name)
            for t in templates
            if t.definition.organization == org
            and source.stored_hashes(org, t.definition.kind).get(t.definition.name) != t.spec_hash
        }
        if not changed:
            continue
        rows = [row for kind in KINDS for row in source.rows(org, kind)]
        new_uses: dict[Ref, set[Ref]] = {
            (t.definition.kind, t.definition.name): t.kind.uses(
                t.definition.model_dump(mode="json", by_alias=True)
            )
            for t in templates
            if t.definition.organization == org
        }
        skip: set[Ref] = {(kind, name) for o, kind, name in in_batch if o == org}
        found += find_dependents(
            changed,
            rows,
            lambda row: source.compile(row.source, catalogs),
            template_uses=new_uses,
            skip=skip,
        )
    return found


def print_dependent_problems(dependents: list[Dependent]) -> int:
    """Print the stored definitions that a template change breaks; how many there are."""
    broken = [d for d in dependents if d.error is not None]
    for dependent in broken:
        stored = dependent.stored
        uses = ", ".join(f"'{name}'" for name in dependent.uses)
        label = Path(f"stored {stored.kind} {stored.organization}/{stored.name} (uses template {uses})")
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
