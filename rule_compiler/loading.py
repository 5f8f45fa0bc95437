"""Reading definition documents from YAML or JSON text, safely.

YAML goes through a ``SafeLoader`` subclass only: tags that build Python objects are refused with
the line they are on, and duplicate keys (which YAML silently lets the last one win) are errors.
Documents nest at most :data:`MAX_NESTING_DEPTH` levels (YAML: checked while composing, before the
recursion that a document thousands of levels deep would exhaust; JSON: the parser's own recursion
limit, then a walk).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from rule_compiler.errors import DefinitionLoadError

MAX_DOCUMENT_BYTES = 1_000_000
#: How many levels of mappings and lists a document may nest (the deepest legitimate definition, a
#: rule with conditions 12 groups deep, needs about 30). The REST view applies it to every JSON body.
MAX_NESTING_DEPTH = 64
DEFINITION_SUFFIXES = (".yaml", ".yml", ".json")
NESTING_MESSAGE = f"the document nests more than {MAX_NESTING_DEPTH} levels of mappings and lists"


def nesting_depth(value: Any, limit: int = MAX_NESTING_DEPTH) -> int:
    """How deep mappings and lists nest in ``value`` (a scalar: 0), counting no further than ``limit + 1``.

    Iterative, so any depth the parser produced is measured without recursion.
    """
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            depth += 1
            deepest = max(deepest, depth)
            if depth <= limit:
                stack.extend((child, depth) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


#: How a refused anchor or alias is reported (the REST view gives it its own error code).
ALIAS_MESSAGE = "YAML anchors and aliases are not accepted"


class _StrictSafeLoader(yaml.SafeLoader):
    """Safe YAML with duplicate keys rejected, nesting bounded, and no anchors or aliases (a few
    hundred bytes of nested aliases stand for gigabytes once built)."""

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            what = (
                f"alias '*{event.anchor}'"
                if isinstance(event, yaml.AliasEvent)
                else f"anchor '&{event.anchor}'"
            )
            raise yaml.composer.ComposerError(
                None,
                None,
                f"{ALIAS_MESSAGE}: {what}; write the value out",
                event.start_mark,
            )
        self._depth += 1
        try:
            # scalars are nodes too (one level below their list or mapping): the walk after loading
            # (nesting_depth) is exact; this only keeps the recursion bounded
            if self._depth > MAX_NESTING_DEPTH + 1:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise yaml.composer.ComposerError(None, None, NESTING_MESSAGE, mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key '{key}'", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def parse_document(text: str, *, source: str | None = None, fmt: str = "yaml") -> dict[str, Any]:
    """Parse one definition document; raise :class:`DefinitionLoadError` with file and line on failure."""
    if len(text.encode("utf-8", "replace")) > MAX_DOCUMENT_BYTES:
        raise DefinitionLoadError(f"document is larger than {MAX_DOCUMENT_BYTES} bytes", source=source)
    if fmt == "json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DefinitionLoadError(f"invalid JSON: {exc.msg}", source=source, line=exc.lineno) from None
        except RecursionError:
            raise DefinitionLoadError(NESTING_MESSAGE, source=source) from None
    else:
        data = _load_yaml(text, source)
    if nesting_depth(data) > MAX_NESTING_DEPTH:
        raise DefinitionLoadError(NESTING_MESSAGE, source=source)
    if not isinstance(data, dict):
        raise DefinitionLoadError(
            f"a definition must be a mapping with 'kind', 'name', ... at the top, not {type(data).__name__}",
            source=source,
        )
    return data


def _load_yaml(text: str, source: str | None) -> Any:
    try:
        documents = list(yaml.load_all(text, Loader=_StrictSafeLoader))
    except yaml.constructor.ConstructorError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        problem = exc.problem or "cannot construct value"
        if "constructor for the tag" in problem:
            tag = problem.split("tag", 1)[1].strip(" '")
            problem = f"unsafe or unknown YAML tag '{tag}': only plain YAML values are accepted"
        raise DefinitionLoadError(problem, source=source, line=line) from None
    except yaml.composer.ComposerError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise DefinitionLoadError(exc.problem or "invalid YAML", source=source, line=line) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise DefinitionLoadError(f"invalid YAML: {problem}", source=source, line=line) from None
    documents = [d for d in documents if d is not None]
    if len(documents) != 1:
        raise DefinitionLoadError(
            f"expected exactly one definition in the document, found {len(documents)}", source=source
        )
    return documents[0]


def read_definition_file(path: Path) -> dict[str, Any]:
    """Read and parse one ``.yaml``/``.yml``/``.json`` file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DefinitionLoadError(f"cannot read file: {exc}", source=str(path)) from None
    return parse_document(text, source=str(path), fmt="json" if path.suffix == ".json" else "yaml")


def expand_paths(paths: list[Path]) -> list[Path]:
    """Files named directly, plus every definition file under named folders, sorted and unique."""
    found: set[Path] = set()
    for path in paths:
        if path.is_dir():
            found.update(p for p in path.rglob("*") if p.is_file() and p.suffix in DEFINITION_SUFFIXES)
        else:
            found.add(path)
    return sorted(found)
