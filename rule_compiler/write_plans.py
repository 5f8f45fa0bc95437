"""Planning a write: a document compiled in its organization's context, and the stored definitions
recompiled with it (the users of a changed template), shared by the REST view and the CLI.

:func:`plan_write` gives a :class:`WritePlan`; its :meth:`~WritePlan.writes` go to
:meth:`rule_compiler.store.RuleStore.apply_all`, so the definition and its recompiled users are
stored in one transaction, or nothing is (a plan with broken users is refused:
:func:`broken_error`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rule_compiler.dependents import Dependent, find_dependents
from rule_compiler.errors import Issue, NotFoundError
from rule_compiler.kinds import KINDS, Ref
from rule_compiler.registration import Compiled, CompiledTemplate, compile_in, context_from_store
from rule_compiler.store import DefinitionWrite, RuleStore
from rule_compiler.store.rule_store import Expected


def compile_for(
    store: RuleStore,
    organization: str,
    data: dict[str, Any],
    *,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Compiled | CompiledTemplate:
    """Validate and compile a document of ``organization`` against its catalog and the stored
    definitions its kind uses (``overrides``: kind → name → parsed, in place of stored ones)."""
    return compile_in(data, context_from_store(store, organization, data, overrides=overrides))


@dataclass(frozen=True)
class WritePlan:
    """A compiled definition and the stored definitions recompiled with it (a changed template's users)."""

    compiled: Compiled | CompiledTemplate
    dependents: list[Dependent] = field(default_factory=list)

    @property
    def broken(self) -> list[Dependent]:
        return [d for d in self.dependents if d.compiled is None]

    def writes(
        self, actor: str, expected: Expected, *, restored_from: int | None = None
    ) -> list[tuple[Expected, DefinitionWrite]]:
        """:meth:`RuleStore.apply_all` writes: the definition (checked against ``expected``; a restore
        of version ``restored_from``), then each recompiled dependent, checked against the version it
        was compiled from, keeping its active flag."""
        first = self.compiled.write(actor, restored_from=restored_from)
        out: list[tuple[Expected, DefinitionWrite]] = [(expected, first)]
        for dependent in self.dependents:
            assert dependent.compiled is not None  # noqa: S101 - broken plans are refused before
            row = dependent.stored
            out.append(((row.version, row.active), dependent.compiled.write(actor, active=row.active)))
        return out


def plan_write(store: RuleStore, organization: str, data: dict[str, Any]) -> WritePlan:
    """Compile ``data`` and, when its content changed, recompile what uses it (each compiled, or with
    the problems the change gives it); RuleValidationError when ``data`` itself is invalid."""
    compiled = compile_for(store, organization, data)
    definition = compiled.definition
    ref: Ref = (definition.kind, definition.name)
    if compiled.kind.has_dag:
        return WritePlan(compiled)  # nothing expands a kind with a DAG into what uses it
    try:
        current = store.get(organization=organization, kind=ref[0], name=ref[1])
    except NotFoundError:
        current = None
    if current is not None and current.spec_hash == compiled.spec_hash:
        return WritePlan(compiled)  # unchanged content: its users compile as they did
    overrides = {ref[0]: {ref[1]: definition}}
    new_uses = {ref: compiled.kind.uses(definition.model_dump(mode="json", by_alias=True))}
    rows = [row for kind in KINDS for row in store.definitions_of_kind(organization, kind)]
    dependents = find_dependents(
        {ref},
        rows,
        lambda row: compile_for(store, organization, row.source, overrides=overrides),
        template_uses=new_uses,
    )
    return WritePlan(compiled, dependents)


def broken_error(broken: list[Dependent]) -> tuple[str, list[Issue]]:
    """The 409 answer when a change would break stored definitions: a sentence and every problem, at
    its path in the definition, the message naming it."""
    names = ", ".join(f"'{d.stored.name}'" for d in broken)
    count = len(broken)
    noun = " and ".join(sorted({d.stored.kind for d in broken}))
    detail = (
        f"this change would make {count} stored {noun}{'s' if count != 1 else ''} invalid ({names}); "
        "nothing was stored: change those first, or the template so that they still fit"
    )
    issues = [
        Issue(
            issue.path,
            f"stored {d.stored.kind} '{d.stored.name}' (uses {', '.join(d.uses)}): {issue.message}",
            issue.code,
        )
        for d in broken
        for issue in d.issues
    ]
    return detail, issues


def restored_document(
    store: RuleStore, organization: str, kind: str, name: str, version: int
) -> dict[str, Any]:
    """Version ``version`` of a definition as a document to write again; a kind with an active flag
    keeps its current one (restoring content does not pause or resume it). NotFoundError when the
    definition is not live or has no such version."""
    current = store.get(organization=organization, kind=kind, name=name)
    document = dict(store.get(organization=organization, kind=kind, name=name, version=version).source)
    if KINDS[kind].activatable:
        document["active"] = current.active
    return document
