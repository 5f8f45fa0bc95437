"""The layers (docs/architecture.md §1, "Layers"), checked on the source: which package may import
which, no import cycle in ``rule_compiler``, no module name in both ``rule_compiler`` and the plugin,
no oversized module.

Imports are read from the AST of every module under ``rule_compiler/`` and ``plugins/rule_engine/``:
at module level and inside functions and classes alike (an import deferred into a function is still a
dependency, and a circle it hides is still a circle). ``from a.b import c`` depends on the module
``a.b.c`` when there is one, else on ``a.b``; importing a module is not counted as depending on the
packages above it. Imports under ``if TYPE_CHECKING:`` run only for the type checker: they count for
the layering rules (a type is a dependency too) but not for cycles. Dynamic imports (``importlib``,
the packages' lazy exports) are not seen; they only ever name a module of their own package.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from itertools import pairwise
from pathlib import Path

import pytest

from tests.conftest import ROOT

#: The top-level packages we scan, and their folders.
PACKAGES = {"rule_compiler": ROOT / "rule_compiler", "rule_engine": ROOT / "plugins" / "rule_engine"}
MAX_LINES = 500


@dataclass(frozen=True)
class Import:
    """One imported module, as one module depends on it."""

    source: str  # the importing module
    target: str  # the imported module: the most specific of ours, else the name as written
    path: Path
    line: int
    in_function: bool
    type_checking: bool

    def __str__(self) -> str:
        where = " (inside a function)" if self.in_function else ""
        where += " (under TYPE_CHECKING)" if self.type_checking else ""
        return f"{self.path.relative_to(ROOT)}:{self.line} imports {self.target}{where}"


@dataclass(frozen=True)
class Rule:
    """Modules under ``importer`` import nothing under ``forbidden`` (a package may import itself)."""

    importer: str
    forbidden: str
    why: str


RULES = [
    Rule(
        "rule_compiler",
        "airflow",
        "rule_compiler is pure Python: the Airflow side hands in what needs Airflow",
    ),
    Rule("rule_compiler", "rule_engine", "rule_compiler never imports the Airflow side"),
    Rule("rule_compiler", "rule_compiler.cli", "only the command line imports the command line"),
    *(
        Rule("rule_compiler.definitions", f"rule_compiler.{layer}", "the definition models come first")
        for layer in ("validation", "compiler", "runtime", "store")
    ),
    *(
        Rule("rule_compiler.validation", f"rule_compiler.{layer}", "validation reads definitions, not runs")
        for layer in ("runtime", "store")
    ),
    *(
        Rule("rule_compiler.store", f"rule_compiler.{layer}", "the store keeps rows; the runtime uses it")
        for layer in ("runtime", "validation", "compiler")
    ),
    Rule("rule_compiler.events", "rule_compiler.runtime", "the outbox is below the runtime that reads it"),
    Rule("rule_compiler.reporting", "rule_compiler.validation", "report rendering runs compiled specs"),
    Rule("rule_engine.api", "rule_engine.console_script", "the REST view and the console script are peers"),
    Rule(
        "rule_engine.hooks",
        "rule_compiler.store",
        "hooks reach Airflow connections; they write no store rows",
    ),
]


def under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


@cache
def modules() -> dict[str, Path]:
    """Every module of ours by dotted name (a package by its own name)."""
    found: dict[str, Path] = {}
    for folder in PACKAGES.values():
        for path in sorted(folder.rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            parts = path.relative_to(folder.parent).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _resolve(name: str, known: Mapping[str, Path]) -> str:
    """The most specific module of ours ``name`` is in (``name`` itself when it is not ours)."""
    candidate = name
    while candidate not in known and "." in candidate:
        candidate = candidate.rsplit(".", 1)[0]
    return candidate if candidate in known else name


def imports_in(
    source: str, path: Path, tree: ast.Module, known: Mapping[str, Path], *, is_package: bool
) -> list[Import]:
    """Every import of one module's AST, at any depth."""
    found: list[Import] = []

    def add(target: str, node: ast.stmt, in_function: bool, type_checking: bool) -> None:
        found.append(Import(source, target, path, node.lineno, in_function, type_checking))

    def visit(node: ast.AST, in_function: bool, type_checking: bool) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(_resolve(alias.name, known), node, in_function, type_checking)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the importing module's package
                package = source.split(".") if is_package else source.split(".")[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join([*package, *([node.module] if node.module else [])])
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                add(
                    submodule if submodule in known else _resolve(base, known),
                    node,
                    in_function,
                    type_checking,
                )
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, in_function, True)
            for child in node.orelse:
                visit(child, in_function, type_checking)
        else:
            deeper = in_function or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            for child in ast.iter_child_nodes(node):
                visit(child, deeper, type_checking)

    visit(tree, False, False)
    return found


@cache
def all_imports() -> list[Import]:
    known = modules()
    found: list[Import] = []
    for name, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        found += imports_in(name, path, tree, known, is_package=path.name == "__init__.py")
    return found


# -- the scanner itself --------------------------------------------------------------------------


def test_the_scanner_sees_imports_in_functions_and_type_checking_blocks() -> None:
    code = """
import os
from typing import TYPE_CHECKING
from rule_compiler.store import tables
from rule_compiler.store.tables import metadata
if TYPE_CHECKING:
    from rule_compiler.runtime.rows import iter_rows
else:
    import rule_compiler.clock
class C:
    def f(self):
        from . import _db
        from ..errors import StoreError
"""
    tree = ast.parse(code)
    found = imports_in("rule_compiler.store.x", Path(ROOT / "x.py"), tree, modules(), is_package=False)
    seen = {(i.target, i.in_function, i.type_checking) for i in found}
    assert seen == {
        ("os", False, False),
        ("typing", False, False),
        ("rule_compiler.store.tables", False, False),
        ("rule_compiler.runtime.rows", False, True),
        ("rule_compiler.clock", False, False),
        ("rule_compiler.store._db", True, False),
        ("rule_compiler.errors", True, False),
    }


def test_the_scan_reads_every_module() -> None:
    targets = {(i.source, i.target) for i in all_imports()}
    assert len(modules()) > 150
    assert ("rule_compiler.cli.report", "rule_compiler.reporting.interval") in targets  # in a function
    assert ("rule_engine.loader", "rule_compiler.store") in targets


# -- the rules -----------------------------------------------------------------------------------


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: f"{rule.importer}-x-{rule.forbidden}")
def test_layers_import_only_downwards(rule: Rule) -> None:
    wrong = [
        str(i)
        for i in all_imports()
        if under(i.source, rule.importer)
        and under(i.target, rule.forbidden)
        and not under(i.source, rule.forbidden)
    ]
    assert not wrong, f"{rule.importer} must not import {rule.forbidden} ({rule.why}):\n" + "\n".join(wrong)


def _cycles(graph: Mapping[str, set[str]]) -> Iterator[list[str]]:
    """One cycle through each strongly connected group of modules (Tarjan), as a closed path."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def connect(node: str) -> None:  # recursion depth is bounded by the import chain's length
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1 or node in graph.get(node, ()):
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            connect(node)
    for group in groups:
        start = min(group)
        paths = {start: [start]}
        queue = [start]
        while queue:  # the shortest way back to start inside the group
            node = queue.pop(0)
            for nxt in sorted(graph[node] & group):
                if nxt == start:
                    yield [*paths[node], start]
                    queue = []
                    break
                if nxt not in paths:
                    paths[nxt] = [*paths[node], nxt]
                    queue.append(nxt)


def test_rule_compiler_has_no_import_cycle() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    lines: dict[tuple[str, str], Import] = {}
    for i in all_imports():
        if i.type_checking or not under(i.source, "rule_compiler") or not under(i.target, "rule_compiler"):
            continue
        if i.target != i.source:
            graph[i.source].add(i.target)
            lines.setdefault((i.source, i.target), i)
    found = [
        " -> ".join(
            [cycle[0], *(f"{b} ({lines[a, b].path.name}:{lines[a, b].line})" for a, b in pairwise(cycle))]
        )
        for cycle in _cycles(graph)
    ]
    assert not found, "import cycles in rule_compiler (imports inside functions count):\n" + "\n".join(found)


def test_no_module_name_is_in_both_rule_compiler_and_the_plugin() -> None:
    def names(folder: Path) -> dict[str, list[str]]:
        found: dict[str, list[str]] = defaultdict(list)
        for path in folder.rglob("*.py"):
            relative = path.relative_to(folder)
            if "__pycache__" in relative.parts or "versions" in relative.parts[:-1]:
                continue
            if path.stem not in ("__init__", "__main__"):
                found[path.stem].append(str(path.relative_to(ROOT)))
            for package in relative.parts[:-1]:  # the folders holding modules
                found[package].append(str(path.parent.relative_to(ROOT)))
        return found

    ours, plugin = names(PACKAGES["rule_compiler"]), names(PACKAGES["rule_engine"])
    repeats = [
        f"{name}: {sorted(set(ours[name]))} and {sorted(set(plugin[name]))}"
        for name in sorted(ours.keys() & plugin)
    ]
    assert not repeats, "module names in both rule_compiler and rule_engine:\n" + "\n".join(repeats)


def test_no_module_is_over_500_lines() -> None:
    long = []
    for folder in (ROOT / "rule_compiler", ROOT / "plugins"):
        for path in sorted(folder.rglob("*.py")):
            count = len(path.read_text(encoding="utf-8").splitlines())
            if count > MAX_LINES:
                long.append(f"{path.relative_to(ROOT)}: {count} lines")
    assert not long, f"modules over {MAX_LINES} lines (split them):\n" + "\n".join(long)
