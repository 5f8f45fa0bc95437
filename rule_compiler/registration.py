"""Registration: validate, compile and store one definition — shared by the CLI and the REST view.

A rule is stored as written (``{use: template}`` nodes kept) with the spec compiled from its expanded
form (notification templates resolved into its actions). A template (condition or notification) has
no DAG: it is stored with ``dag_id`` ``<kind>__<org>__<name>`` and its canonical JSON as the "spec"; the
DAG loader reads only rules (``RuleStore.loadable_specs``).

A compiled spec (a template's canonical JSON) larger than :data:`~rule_compiler.canonical.MAX_SPEC_BYTES`
is refused here, before anything is stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rule_compiler.canonical import MAX_SPEC_BYTES, canonical_json, content_hash
from rule_compiler.catalog import Catalog
from rule_compiler.compiler import COMPILER_VERSION, DagSpec, compile_rule, dag_id_for
from rule_compiler.compiler.report import compile_report
from rule_compiler.definitions import (
    ConditionTemplateDefinition,
    NotificationTemplateDefinition,
    RuleDefinition,
)
from rule_compiler.definitions.report import ReportDefinition
from rule_compiler.errors import Issue, RuleValidationError
from rule_compiler.notification_templates import NOTIFICATION_TEMPLATE_KIND, NotificationTemplates
from rule_compiler.store import ApplyResult, RuleStore
from rule_compiler.validation import validate_document
from rule_compiler.validation.paths import DOCUMENT
from rule_compiler.validation.refs import StoredNames

TEMPLATE_KIND = "condition_template"
TEMPLATE_KINDS = (TEMPLATE_KIND, NOTIFICATION_TEMPLATE_KIND)


@dataclass(frozen=True)
class Compiled:
    """A valid rule with its compiled spec: ``definition`` as written, ``rule`` with templates expanded.

    ``warnings``: problems that do not stop it being stored (shown by the CLI and the REST view).
    """

    definition: RuleDefinition | ReportDefinition
    spec: DagSpec
    spec_json: str
    spec_hash: str
    rule: RuleDefinition | None  # None for a report
    warnings: tuple[Issue, ...] = ()

    @property
    def dag_id(self) -> str:
        return self.spec.dag_id


@dataclass(frozen=True)
class CompiledTemplate:
    """A valid template, ready to store (no DAG: ``spec_json`` is its canonical JSON)."""

    definition: ConditionTemplateDefinition | NotificationTemplateDefinition
    spec_json: str
    spec_hash: str
    warnings: tuple[Issue, ...] = ()

    @property
    def dag_id(self) -> str:
        return dag_id_for(self.definition.kind, self.definition.organization, self.definition.name)


def compile_document(
    data: dict[str, Any],
    catalog: Catalog | None,
    *,
    templates: Mapping[str, ConditionTemplateDefinition] | None = None,
    notification_templates: NotificationTemplates | None = None,
    stored: StoredNames | None = None,
    source: str | None = None,
) -> Compiled | CompiledTemplate:
    """Validate (raising ``RuleValidationError`` with every problem) and compile; warnings ride along.

    ``templates`` / ``notification_templates``: the condition / notification templates (by name) of
    the document's organization; ``stored``: the names of its stored definitions by kind, which
    actions starting one (``generate_report``) are checked against.
    """
    validated = validate_document(
        data,
        catalog,
        templates=templates,
        notification_templates=notification_templates,
        stored=stored,
        source=source,
    )
    definition = validated.definition
    compiled: Compiled | CompiledTemplate
    if isinstance(definition, ReportDefinition):
        assert validated.report_sources is not None  # noqa: S101 - set for every valid report
        spec = compile_report(definition, validated.report_sources)
        compiled = Compiled(definition, spec, spec.to_json(), spec.spec_hash, None, validated.warnings)
    elif isinstance(definition, ConditionTemplateDefinition | NotificationTemplateDefinition):
        dumped = definition.model_dump(mode="json", by_alias=True)
        compiled = CompiledTemplate(definition, canonical_json(dumped), content_hash(dumped))
    else:
        rule = validated.rule or definition
        spec = compile_rule(
            rule,
            catalog or Catalog(organization=rule.organization),
            notification_refs=validated.notification_refs,
        )
        compiled = Compiled(definition, spec, spec.to_json(), spec.spec_hash, rule, validated.warnings)
    check_spec_size(compiled.spec_json, source=source)
    return compiled


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
    store: RuleStore, compiled: Compiled | CompiledTemplate, *, actor: str, active: bool | None = None
) -> ApplyResult:
    """Store the definition version, its spec and the audit row in one transaction.

    ``active`` overrides the definition's own flag (a recompiled rule keeps its stored state).
    """
    definition = compiled.definition
    source = definition.model_dump(mode="json", by_alias=True)
    if active is None:
        active = definition.active if isinstance(definition, RuleDefinition | ReportDefinition) else True
    return store.apply(
        organization=definition.organization,
        kind=definition.kind,
        name=definition.name,
        dag_id=compiled.dag_id,
        source=source,
        source_hash=content_hash(source),
        spec_json=compiled.spec_json,
        spec_hash=compiled.spec_hash,
        active=active,
        actor=actor,
        compiler_version=COMPILER_VERSION,
    )
