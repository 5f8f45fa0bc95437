"""Registration: validate, compile and store one definition — shared by the CLI and the REST view."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rule_compiler.canonical import content_hash
from rule_compiler.catalog import Catalog
from rule_compiler.compiler import COMPILER_VERSION, DagSpec, compile_rule
from rule_compiler.definitions import RuleDefinition
from rule_compiler.store import ApplyResult, RuleStore
from rule_compiler.validation import validate_definition


@dataclass(frozen=True)
class Compiled:
    """A valid definition with its compiled spec."""

    definition: RuleDefinition
    spec: DagSpec
    spec_json: str
    spec_hash: str


def compile_document(data: dict[str, Any], catalog: Catalog | None, *, source: str | None = None) -> Compiled:
    """Validate (raising ``RuleValidationError`` with every problem) and compile."""
    definition = validate_definition(data, catalog, source=source)
    spec = compile_rule(definition, catalog or Catalog(organization=definition.organization))
    return Compiled(definition, spec, spec.to_json(), spec.spec_hash)


def register(store: RuleStore, compiled: Compiled, *, actor: str) -> ApplyResult:
    """Store the definition version, its spec and the audit row in one transaction."""
    definition = compiled.definition
    source = definition.model_dump(mode="json", by_alias=True)
    return store.apply(
        organization=definition.organization,
        kind=definition.kind,
        name=definition.name,
        dag_id=compiled.spec.dag_id,
        source=source,
        source_hash=content_hash(source),
        spec_json=compiled.spec_json,
        spec_hash=compiled.spec_hash,
        active=definition.active,
        actor=actor,
        compiler_version=COMPILER_VERSION,
    )
