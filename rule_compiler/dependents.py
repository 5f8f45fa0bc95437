"""Who uses a stored definition: the one search behind "used by", template deletes and recompiles.

What a definition uses comes from its kind's row (:attr:`rule_compiler.kinds.Kind.uses`, read from the
raw source). A kind without a DAG (a template) is expanded into what uses it, so a change to one
reaches, through other condition templates, every definition with a DAG that uses it: those are
recompiled (the CLI's ``apply`` and the REST view's template writes), each compiled or with the
problems the change gives it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from rule_compiler.errors import DefinitionError, Issue
from rule_compiler.kinds import KINDS, Ref
from rule_compiler.registration import Compiled, CompiledTemplate
from rule_compiler.store import StoredDefinition


@dataclass(frozen=True)
class Dependent:
    """A stored definition using a changed one: ``uses`` names what it uses of the change, and it is
    either ``compiled`` anew or refused with ``error``."""

    stored: StoredDefinition
    uses: list[str]
    compiled: Compiled | None = None
    error: DefinitionError | None = None

    @property
    def issues(self) -> list[Issue]:
        """The problems the change gives it (none when it compiled)."""
        if self.error is None:
            return []
        found = getattr(self.error, "issues", None)
        return list(found) if found is not None else [Issue("(document)", str(self.error), "invalid")]


def uses_of(row: StoredDefinition) -> set[Ref]:
    """What a stored definition uses, by its kind's row (nothing for a kind this release lacks)."""
    kind = KINDS.get(row.kind)
    return kind.uses(row.source) if kind is not None else set()


def direct_users(rows: Iterable[StoredDefinition], ref: Ref) -> dict[str, list[str]]:
    """kind → names (sorted) of the stored definitions that name ``ref`` themselves."""
    found: dict[str, list[str]] = {}
    for row in rows:
        if (row.kind, row.name) != ref and ref in uses_of(row):
            found.setdefault(row.kind, []).append(row.name)
    return {kind: sorted(names) for kind, names in sorted(found.items())}


def expanded_closure(changed: set[Ref], uses: dict[Ref, set[Ref]]) -> set[Ref]:
    """``changed`` and every definition without a DAG (a template) that uses one of them, directly or
    through others; ``uses``: each known definition's uses."""
    affected = set(changed)
    while True:
        grown = {
            ref for ref, used in uses.items() if not KINDS[ref[0]].has_dag and used & affected
        } - affected
        if not grown:
            return affected
        affected |= grown


def find_dependents(
    changed: set[Ref],
    rows: Iterable[StoredDefinition],
    recompile: Callable[[StoredDefinition], Compiled | CompiledTemplate],
    *,
    template_uses: dict[Ref, set[Ref]] | None = None,
    skip: set[Ref] | None = None,
) -> list[Dependent]:
    """The stored definitions with a DAG that use a ``changed`` definition (directly, or a condition
    template through others), each recompiled by ``recompile`` (or with the error it now raises).

    ``template_uses``: the uses of the templates as they will be (the change's, over the stored ones;
    default: the stored rows'); ``skip``: definitions that are being rewritten anyway (a batch's own).
    """
    rows = list(rows)
    uses = {(row.kind, row.name): uses_of(row) for row in rows if row.kind in KINDS}
    uses.update(template_uses or {})
    affected = expanded_closure(changed, uses)
    found: list[Dependent] = []
    for row in rows:
        kind = KINDS.get(row.kind)
        if kind is None or not kind.has_dag or (row.kind, row.name) in (skip or set()):
            continue
        hits = sorted(name for used_kind, name in uses_of(row) & affected if not KINDS[used_kind].has_dag)
        if not hits:
            continue
        try:
            compiled = recompile(row)
        except DefinitionError as exc:
            found.append(Dependent(row, hits, error=exc))
        else:
            assert isinstance(compiled, Compiled)  # noqa: S101 - a kind with a DAG compiles to one
            found.append(Dependent(row, hits, compiled))
    return found
