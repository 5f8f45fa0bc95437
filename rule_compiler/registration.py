"""Registration: validate, compile and store one definition — shared by the CLI and the REST view.

The document's row of the kinds table (:mod:`rule_compiler.kinds`) decides how: a kind with a DAG
(rule, report) is lowered to a ``DagSpec``; one without (the templates) is stored with ``dag_id``
``<kind>__<org>__<name>`` and its canonical JSON as the "spec" (the DAG loader reads only kinds with a
DAG). A rule is stored as written (``{use: template}`` nodes kept) with the spec compiled from its
expanded form.

A compiled spec (a template's canonical JSON) larger than :data:`~rule_compiler.canonical.MAX_SPEC_BYTES`
is refused here, before anything is stored. :meth:`CompiledDefinition.write` is the one place a
store write (:class:`~rule_compiler.store.DefinitionWrite`) is spelled.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from rule_compiler.canonical import MAX_SPEC_BYTES, canonical_json, content_hash
from rule_compiler.catalog import Catalog
from rule_compiler.compiler import COMPILER_VERSION, DagSpec, dag_id_for
from rule_compiler.definitions import ConditionTemplateDefinition, RuleDefinition
from rule_compiler.errors import Issue, RuleValidationError
from rule_compiler.kinds import CONDITION_TEMPLATE, KINDS, NOTIFICATION_TEMPLATE, WORKFLOW, Kind
from rule_compiler.notification_templates import NotificationTemplates
from rule_compiler.raw_sources import may_assign
from rule_compiler.store import ApplyResult, DefinitionWrite, RuleStore
from rule_compiler.validation.document import check_document
from rule_compiler.validation.kind_checks import CheckContext, Definition
from rule_compiler.validation.paths import DOCUMENT
from rule_compiler.validation.refs import StoredNames
from rule_compiler.validation.template_use import Templates


@dataclass(frozen=True)
class CompiledDefinition:
    """A valid definition ready to store: ``spec_json`` is its compiled spec (a kind without a DAG: its
    canonical JSON). ``warnings``: problems that do not stop it being stored."""

    definition: Definition
    spec_json: str
    spec_hash: str
    warnings: tuple[Issue, ...]

    @property
    def kind(self) -> Kind:
        """The definition's row of the kinds table."""
        return KINDS[self.definition.kind]

    @property
    def dag_id(self) -> str:
        return dag_id_for(self.definition.kind, self.definition.organization, self.definition.name)

    @property
    def source(self) -> dict[str, Any]:
        """The definition as stored: as written."""
        return self.definition.model_dump(mode="json", by_alias=True)

    @property
    def expanded(self) -> dict[str, Any] | None:
        """The definition as its template expanded it, when it was written with ``use`` (else None)."""
        return None

    def write(
        self, actor: str, *, active: bool | None = None, restored_from: int | None = None
    ) -> DefinitionWrite:
        """The store write of this version; ``active`` overrides the definition's own flag (a recompiled
        rule keeps its stored state); kinds without an active flag are always active."""
        source = self.source
        if active is None:
            active = bool(getattr(self.definition, "active", True)) if self.kind.activatable else True
        return DefinitionWrite(
            organization=self.definition.organization,
            kind=self.definition.kind,
            name=self.definition.name,
            dag_id=self.dag_id,
            source=source,
            source_hash=content_hash(source),
            spec_json=self.spec_json,
            spec_hash=self.spec_hash,
            active=active,
            actor=actor,
            compiler_version=COMPILER_VERSION,
            restored_from=restored_from,
            expanded=self.expanded,
        )


@dataclass(frozen=True)
class Compiled(CompiledDefinition):
    """A definition with a DAG (a rule or a report) and its compiled spec; ``rule`` is a rule with its
    templates expanded (None for other kinds); ``written``: the document as written when a rule or
    workflow template built it (``definition`` is then the expanded one)."""

    spec: DagSpec
    rule: RuleDefinition | None
    written: dict[str, Any] | None = None

    @property
    def dag_id(self) -> str:
        return self.spec.dag_id

    @property
    def source(self) -> dict[str, Any]:
        return self.written if self.written is not None else super().source

    @property
    def expanded(self) -> dict[str, Any] | None:
        return None if self.written is None else self.definition.model_dump(mode="json", by_alias=True)


@dataclass(frozen=True)
class CompiledTemplate(CompiledDefinition):
    """A definition without a DAG (a condition or notification template), stored as its canonical JSON."""


def compile_document(
    data: dict[str, Any],
    catalog: Catalog | None,
    *,
    templates: Mapping[str, ConditionTemplateDefinition] | None = None,
    notification_templates: NotificationTemplates | None = None,
    stored: StoredNames | None = None,
    definition_templates: Mapping[str, Templates] | None = None,
    members: Collection[str] | None = None,
    source: str | None = None,
) -> Compiled | CompiledTemplate:
    """Validate (raising ``RuleValidationError`` with every problem) and compile; warnings ride along.

    ``templates`` / ``notification_templates``: the condition / notification templates (by name) of
    the document's organization; ``stored``: the names of its stored definitions by kind, which
    actions starting one (``generate_report``) are checked against; ``members``: the organization's
    user names, which approvals may assign.
    """
    context = CheckContext(
        catalog, templates or {}, notification_templates or {}, stored, definition_templates or {}, members
    )
    return compile_in(data, context, source=source)


def compile_in(
    data: dict[str, Any], context: CheckContext, *, source: str | None = None
) -> Compiled | CompiledTemplate:
    """:func:`compile_document` with the context already gathered (:func:`context_from_store`)."""
    validated = check_document(data, context, source=source)
    definition = validated.definition
    kind = KINDS[definition.kind]
    compiled: Compiled | CompiledTemplate
    if kind.lower is None:
        dumped = definition.model_dump(mode="json", by_alias=True)
        compiled = CompiledTemplate(
            definition, canonical_json(dumped), content_hash(dumped), validated.warnings
        )
    else:
        spec = kind.lower(validated, context.catalog)
        compiled = Compiled(
            definition,
            spec.to_json(),
            spec.spec_hash,
            validated.warnings,
            spec,
            validated.rule,
            validated.written,
        )
    check_spec_size(compiled.spec_json, source=source)
    return compiled


def context_from_store(
    store: RuleStore,
    organization: str,
    data: Mapping[str, Any],
    *,
    catalog: Catalog | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> CheckContext:
    """What a document of ``organization`` is checked against, read from the store: the catalog (when
    its kind needs one and none is given), and the stored definitions its row says it uses.

    ``overrides``: kind → name → parsed definition that replaces the stored one (a template change
    being tried against the rules that use it).
    """
    kind = KINDS.get(str(data.get("kind")))
    if kind is None:
        return CheckContext(catalog)
    if catalog is None and kind.catalog:
        raw = store.get_catalog(organization)
        catalog = None if raw is None else Catalog.model_validate(raw)
    used = {used_kind for used_kind, _ in kind.uses(data)} & set(kind.uses_kinds)
    if kind.template in used:  # built from a template: its body may name any kind this one may use
        used = set(kind.uses_kinds)
    parsed: dict[str, dict[str, Any]] = {}
    inlined = {used_kind for used_kind in used if used_kind in KINDS and not KINDS[used_kind].has_dag}
    for used_kind in sorted(inlined):
        model = KINDS[used_kind].model
        parsed[used_kind] = {
            row.name: model.model_validate(row.source)
            for row in store.definitions_of_kind(organization, used_kind)
        }
        parsed[used_kind].update((overrides or {}).get(used_kind, {}))
    stored: dict[str, dict[str, Any]] = {  # what the actions starting one read: name → source
        used_kind: {row.name: row.source for row in store.definitions_of_kind(organization, used_kind)}
        for used_kind in sorted(used - inlined)
    }
    definition_templates = {k: v for k, v in parsed.items() if k == kind.template}
    members = (
        {membership.username for membership in store.list_memberships(organization)}
        if kind.name == WORKFLOW and may_assign(data)
        else None
    )
    return CheckContext(
        catalog,
        parsed.get(CONDITION_TEMPLATE, {}),
        parsed.get(NOTIFICATION_TEMPLATE, {}),
        stored,
        definition_templates,
        members,
    )


def check_spec_size(spec_json: str, *, source: str | None = None) -> None:
    """Refuse (``RuleValidationError`` at the document) a spec over :data:`MAX_SPEC_BYTES` as UTF-8."""
    size = len(spec_json.encode("utf-8"))
    if size > MAX_SPEC_BYTES:
        message = (
            f"the compiled spec would be {size:,} bytes; at most {MAX_SPEC_BYTES:,} are allowed: "
            "split it into smaller definitions, or shorten its conditions, SQL, templates and bodies"
        )
        raise RuleValidationError([Issue(DOCUMENT, message, "spec_too_large")], source=source)


def register(
    store: RuleStore, compiled: CompiledDefinition, *, actor: str, active: bool | None = None
) -> ApplyResult:
    """Store the definition version, its spec and the audit row in one transaction.

    ``active`` overrides the definition's own flag (a recompiled rule keeps its stored state).
    """
    return store.apply(compiled.write(actor, active=active))
