"""What can still be checked in a document pydantic refused: every part that parses, on its own.

pydantic reports every structural problem of a document at once, but the semantic checks (catalog,
action graph, templates) need a model, so a bad cron used to hide a dependency cycle and unknown
columns until it was fixed. :func:`salvage` builds the model from what parses: each top-level field
is validated alone, and inside it each value pydantic refuses is removed — a list item drops out of
its list, a key out of its mapping, and a value whose removal leaves a required key missing takes its
mapping with it — until the rest validates. A value refused only for its content that no check reads
for anything else (a cron that is not one) is replaced by a neutral one instead, so its trigger keeps
its target and the conditions can still be checked against it.

The semantic checks then run on that partial definition and ask :class:`Parts` what is missing, to
skip only the checks that need a removed part (a record action's ``where`` that was removed cannot be
told from one never written). :meth:`Parts.keep` maps their issue paths back to the document's (items
that dropped out of a list shift the indices after them) and drops those already reported: at or under
a removed or replaced value, on the mapping that lost a key or the list that lost every item (``to``
is not empty: its one address did not parse), or at a structural issue's path.

Generic over the definition models: nothing here knows a kind. For a valid document the checks get
:data:`WHOLE`, for which nothing is missing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Annotated, Any, TypeVar, get_origin

from pydantic import BaseModel, TypeAdapter, ValidationError

from rule_compiler.errors import Issue
from rule_compiler.validation.paths import join

Loc = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)

#: pydantic error type → a valid value standing in for a refused one, where the value says nothing
#: else a check needs (a cron says when, not what: its trigger's target still selects the rows).
STAND_INS: Mapping[str, Any] = {"cron": "0 0 * * *", "cron_never_fires": "0 0 * * *"}
#: Removal rounds per top-level field: each round removes at least one value, nearly always all in one.
MAX_ROUNDS = 32
_SEGMENT = re.compile(r"\[(\d+)\]|([^.\[\]]+)")


@dataclass(frozen=True)
class Parts:
    """Which values of the document were removed (or replaced) to build the definition being checked.

    Paths given to the methods are the checked definition's (``actions[1]`` is its second action,
    which may be the document's third when an earlier one did not parse).
    """

    raw: Mapping[str, Any] = field(default_factory=dict)
    removed: frozenset[Loc] = frozenset()
    replaced: frozenset[Loc] = frozenset()

    def parsed(self, path: str) -> bool:
        """The value at ``path`` is in the definition as written (parts of it may have been removed)."""
        loc = self._original(path)
        return not any(loc[: len(gone)] == gone for gone in self.removed)

    def intact(self, path: str) -> bool:
        """The value at ``path`` is in the definition with nothing in it removed."""
        loc = self._original(path)
        return self.parsed(path) and not any(gone[: len(loc)] == loc for gone in self.removed)

    def dropped_names(self, path: str, key: str) -> set[str]:
        """The ``key`` strings of the items of the list at ``path`` that were removed (all of them when
        the list itself was), so a reference to one is not reported as unknown."""
        loc = self._original(path)
        items = _at(self.raw, loc)
        if not isinstance(items, list):
            return set()
        whole = not self.parsed(path)
        return {
            item[key]
            for index, item in enumerate(items)
            if (whole or (*loc, index) in self.removed)
            and isinstance(item, dict)
            and isinstance(item.get(key), str)
        }

    def original(self, path: str) -> str:
        """``path`` in the document's indices."""
        out = ""
        for part in self._original(path):
            out = join(out, part)
        return out

    def keep(self, issues: Iterable[Issue], reported: Iterable[Issue]) -> list[Issue]:
        """``issues`` (found on the definition) at the document's paths, without those already reported
        or sitting on a removed or replaced value (see the module docstring)."""
        seen = {issue.path for issue in reported}
        parents = {gone[:-1] for gone in self.removed if gone and isinstance(gone[-1], str)}
        parents |= {
            gone[:-1]
            for gone in self.removed
            if gone and _kept_indices(self.raw, gone[:-1], self.removed) == []
        }
        covered = self.removed | self.replaced
        kept: list[Issue] = []
        for issue in issues:
            loc = self._original(issue.path)
            path = self.original(issue.path)
            if path in seen or loc in parents or any(loc[: len(gone)] == gone for gone in covered):
                continue
            kept.append(Issue(path, issue.message, issue.code))
        return kept

    def _original(self, path: str) -> Loc:
        loc: list[str | int] = []
        for match in _SEGMENT.finditer(path):
            index, key = match.groups()
            if key is not None:
                loc.append(key)
                continue
            position = int(index)
            kept = _kept_indices(self.raw, tuple(loc), self.removed)
            loc.append(kept[position] if kept is not None and position < len(kept) else position)
        return tuple(loc)


#: Nothing missing: the parts of a document that validated.
WHOLE = Parts()


def salvage(model: type[M], data: Mapping[str, Any]) -> tuple[M, Parts]:
    """``model`` built from what parses of ``data`` (a document the model refused), and what was removed.

    A required top-level field that does not parse at all is left out: ``[]`` for a list, else
    ``None`` (the checks ask :meth:`Parts.parsed` before reading it). Model validators of ``model``
    itself do not run (its fields are validated one by one).
    """
    state = _Salvage(data)
    values: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        key = info.alias or name
        if key in data:
            found = state.field(_adapter(model, name), (key,))
            if found is not _BROKEN:
                values[name] = found
                continue
            state.removed.add((key,))
        if info.is_required():
            values[name] = [] if get_origin(info.annotation) is list else None
            state.removed.add((key,))
    parts = Parts(dict(data), frozenset(state.removed), frozenset(state.replaced))
    return model.model_construct(**values), parts


_BROKEN = object()


@cache
def _adapter(model: type[BaseModel], name: str) -> TypeAdapter[Any]:
    info = model.model_fields[name]
    return TypeAdapter(Annotated[info.annotation, info])  # type: ignore[arg-type]


class _Salvage:
    """The removals and replacements made so far in one document."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = document
        self.removed: set[Loc] = set()
        self.replaced: dict[Loc, Any] = {}

    def field(self, adapter: TypeAdapter[Any], base: Loc) -> Any:
        """The value at ``base`` validated by ``adapter`` after removing what it refuses, or _BROKEN."""
        for _ in range(MAX_ROUNDS):
            value = _rebuild(_at(self.document, base), base, self.removed, self.replaced)
            try:
                return adapter.validate_python(value)
            except ValidationError as exc:
                gone: set[Loc] = set()
                stand_ins: dict[Loc, Any] = {}
                for error in exc.errors(include_url=False):
                    loc, complete = _locate(error["loc"], value, base, self.document, self.removed)
                    stand_in = STAND_INS.get(error["type"])
                    if complete and stand_in is not None and loc not in self.replaced:
                        stand_ins[loc] = stand_in
                    elif loc == base:
                        return _BROKEN
                    else:
                        gone.add(loc)
                if not gone - self.removed and not stand_ins:
                    return _BROKEN  # no progress: give the field up
                self.removed |= gone
                self.replaced |= stand_ins
        return _BROKEN


def _rebuild(value: Any, loc: Loc, removed: set[Loc], replaced: dict[Loc, Any]) -> Any:
    """``value`` (at ``loc`` of the document) without the removed values, with the replacements."""
    if loc in replaced:
        return replaced[loc]
    if isinstance(value, dict):
        return {
            key: _rebuild(item, (*loc, key), removed, replaced)
            for key, item in value.items()
            if (*loc, key) not in removed
        }
    if isinstance(value, list):
        return [
            _rebuild(item, (*loc, index), removed, replaced)
            for index, item in enumerate(value)
            if (*loc, index) not in removed
        ]
    return value


def _locate(
    error_loc: tuple[str | int, ...], value: Any, base: Loc, document: Mapping[str, Any], removed: set[Loc]
) -> tuple[Loc, bool]:
    """The document location of the deepest value of ``error_loc`` present in ``value`` (the rebuilt
    field at ``base``), and whether that is the whole of ``error_loc`` (not a missing key's mapping).

    Union tags (``#schedule``) and union member names (``FieldRef``) in pydantic's locations are not in
    the document: a tag is skipped, a member name ends the walk at the value the union refused.
    """
    loc = base
    current = value
    for part in error_loc:
        if isinstance(current, dict) and part in current:
            loc, current = (*loc, part), current[part]
        elif isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            kept = _kept_indices(document, loc, removed)
            loc, current = (*loc, kept[part] if kept is not None else part), current[part]
        elif isinstance(part, str) and part.startswith("#"):
            continue
        else:
            return loc, False
    return loc, True


def _kept_indices(document: Mapping[str, Any], loc: Loc, removed: Iterable[Loc]) -> list[int] | None:
    """The document indices of the items left in the list at ``loc`` (None: not a list)."""
    items = _at(document, loc)
    if not isinstance(items, list):
        return None
    gone = {r[-1] for r in removed if len(r) == len(loc) + 1 and r[:-1] == loc}
    return [index for index in range(len(items)) if index not in gone]


def _at(document: Any, loc: Loc) -> Any:
    current = document
    for part in loc:
        if not _has(current, part):
            return None
        current = current[part]
    return current


def _has(container: Any, part: str | int) -> bool:
    if isinstance(container, dict):
        return part in container
    return isinstance(container, list) and isinstance(part, int) and 0 <= part < len(container)
