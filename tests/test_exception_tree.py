"""One exception tree: every exception class of ``rule_compiler`` and ``rule_engine`` is a
``RuleEngineError``, drawn in ``rule_compiler/errors.py``'s docstring under its own base, and the REST
view answers each with the status of its class (``ANSWERS``), as docs/api.md's table says."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import rule_compiler
from rule_compiler import errors
from rule_compiler.errors import Issue, RuleEngineError
from tests.conftest import ROOT

pytestmark = pytest.mark.airflow  # rule_engine's modules import Airflow

PACKAGES = ("rule_compiler", "rule_engine")
#: Modules that walking cannot import: running them is their only use. Each must define no class.
NOT_IMPORTED = {"rule_compiler.cli.__main__"}
API_DOC = ROOT / "docs" / "api.md"
_ERROR_NAME = re.compile(r"`(\w+Error)`")


def _package_dirs() -> list[Path]:
    import rule_engine

    return [Path(p) for package in (rule_compiler, rule_engine) for p in package.__path__]


def _walk() -> tuple[list[ModuleType], set[str]]:
    """Every module of both packages, imported; and the names of those deliberately not imported."""
    import rule_engine

    modules: list[ModuleType] = [rule_compiler, rule_engine]
    skipped: set[str] = set()
    for package in (rule_compiler, rule_engine):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + ".", onerror=_fail):
            if info.name in NOT_IMPORTED:
                skipped.add(info.name)
                continue
            modules.append(importlib.import_module(info.name))
    return modules, skipped


def _fail(name: str) -> None:
    raise AssertionError(f"cannot import package {name}")


def _subclasses(cls: type) -> Iterator[type]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def _ours(cls: type) -> bool:
    return cls.__module__.split(".")[0] in PACKAGES


@pytest.fixture(scope="module")
def walked() -> tuple[list[ModuleType], set[str]]:
    return _walk()


@pytest.fixture(scope="module")
def exception_classes(walked: tuple[list[ModuleType], set[str]]) -> list[type[BaseException]]:
    """Every exception class our packages define: module attributes, and any other subclass (nested)."""
    modules, _ = walked
    found: set[type[BaseException]] = set()
    for module in modules:
        for value in vars(module).values():
            if inspect.isclass(value) and issubclass(value, BaseException) and _ours(value):
                found.add(value)
    found.update(cls for cls in _subclasses(BaseException) if _ours(cls))
    return sorted(found, key=lambda cls: (cls.__module__, cls.__qualname__))


@pytest.fixture(scope="module")
def by_name(exception_classes: list[type[BaseException]]) -> dict[str, type[BaseException]]:
    """The classes by name (unique: see below); the tests name classes, not the modules they are in."""
    return {cls.__name__: cls for cls in exception_classes}


def test_the_walk_imports_every_python_file_of_both_packages(
    walked: tuple[list[ModuleType], set[str]],
) -> None:
    modules, skipped = walked
    assert skipped == NOT_IMPORTED  # each was found, and nothing else was left out
    imported = {Path(m.__file__).resolve() for m in modules if m.__file__}
    left = sorted(
        path
        for directory in _package_dirs()
        for path in directory.rglob("*.py")
        if path.resolve() not in imported and "__pycache__" not in path.parts
    )
    # what walk_packages does not import: the skipped __main__ and alembic's scripts (not a package)
    assert left, "expected rule_compiler/cli/__main__.py at least"
    for path in left:
        relative = path.relative_to(ROOT).as_posix()
        assert relative.endswith("/__main__.py") or "/store/migrations/" in relative, relative
        classes = [n.name for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.ClassDef)]
        assert classes == [], f"{relative} defines {classes} but is not imported by the walk"


def test_every_exception_class_in_the_source_is_found(exception_classes: list[type[BaseException]]) -> None:
    """Also the ones introspection cannot see: a class defined in a function not called at import
    (judged by its bases' names: ``LoaderError`` in api/schemas.py is a response model)."""
    found = {cls.__name__ for cls in exception_classes}
    suffixes = ("Error", "Exception", "Warning", "Exit", "Interrupt")
    for directory in _package_dirs():
        for path in directory.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ClassDef):
                    bases = [ast.unparse(base).rsplit(".", 1)[-1] for base in node.bases]
                    if any(base.endswith(suffixes) for base in bases):
                        where = f"{path.relative_to(ROOT)}: class {node.name}({', '.join(bases)})"
                        assert node.name in found, where


def test_the_walk_finds_the_classes_outside_rule_compiler_errors(
    exception_classes: list[type[BaseException]],
) -> None:
    names = {cls.__name__ for cls in exception_classes}
    assert {"RuleEngineError", "TemplateLimitError", "CliError", "NotRunnableError", "YamlBodyError"} <= names
    assert "_MissingRowError" in names and "ConnectionUnusableError" in names
    assert len(exception_classes) >= 50


def test_every_exception_class_is_a_rule_engine_error(exception_classes: list[type[BaseException]]) -> None:
    outside = [
        f"{c.__module__}.{c.__qualname__}" for c in exception_classes if not issubclass(c, RuleEngineError)
    ]
    assert outside == []


def test_class_names_are_unique(exception_classes: list[type[BaseException]]) -> None:
    """The tree, the docs and the logs name a class by its name alone."""
    names = [cls.__name__ for cls in exception_classes]
    assert sorted(n for n in set(names) if names.count(n) > 1) == []


def test_value_errors_stay_value_errors(by_name: dict[str, type[BaseException]]) -> None:
    """pydantic validators and ``except ValueError`` callers rely on these."""
    for name in (
        "FieldResolutionError",
        "GrantsError",
        "DurationError",
        "UnsafePatternError",
        "PreferencesError",
        "RedeliveryRefusedError",
        "UnsafeQueryError",
        "StoragePathError",
        "TemplateCheckError",
        "TemplateLimitError",
    ):
        assert issubclass(by_name[name], ValueError) and issubclass(by_name[name], RuleEngineError), name


def _tree() -> list[tuple[str, str | None]]:
    """(class name, parent name) of each entry drawn in rule_compiler.errors' docstring."""
    doc = errors.__doc__ or ""
    lines = doc.split("::\n\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert lines[0].strip() == "RuleEngineError"
    entries: list[tuple[str, str | None]] = [("RuleEngineError", None)]
    stack = ["RuleEngineError"]  # the open ancestors, by depth
    for line in lines[1:]:
        match = re.match(r"^    ([│ ]   )*[├└]── ([\w.]+)", line)
        assert match, f"not a tree line: {line!r}"
        depth = (match.start(2) - 4) // 4  # 1 for a child of the root
        name = match.group(2).rsplit(".", 1)[-1]
        del stack[depth:]
        entries.append((name, stack[-1]))
        stack.append(name)
    return entries


def test_the_docstring_tree_draws_every_class_under_its_own_base(
    exception_classes: list[type[BaseException]], by_name: dict[str, type[BaseException]]
) -> None:
    entries = _tree()
    assert {name for name, _ in entries} == set(by_name)
    for name, parent in entries:
        if parent is not None:
            bases = [base.__name__ for base in by_name[name].__bases__]
            assert parent in bases, f"the tree draws {name} under {parent}; its bases are {bases}"
    # a class with several of our bases is drawn under each of them
    for cls in exception_classes:
        ours = {b.__name__ for b in cls.__bases__ if issubclass(b, RuleEngineError)}
        assert {p for n, p in entries if n == cls.__name__} == ours or cls is RuleEngineError, cls


def _doc_table() -> dict[str, tuple[int, list[str]]]:
    """docs/api.md "Errors and statuses": {class: (status, [the classes it also answers for])}."""
    text = API_DOC.read_text()
    section = text.split("### Errors and statuses\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    table: dict[str, tuple[int, list[str]]] = {}
    for row in rows:
        cells = [cell.strip() for cell in row.strip().strip("|").split(" | ")]
        assert len(cells) == 4, row
        name = _ERROR_NAME.findall(cells[0])[0]
        assert name not in table, f"{name} twice in docs/api.md"
        table[name] = (int(cells[1]), _ERROR_NAME.findall(cells[3]))
    return table


def test_the_docs_table_is_the_mapping_table(exception_classes: list[type[BaseException]]) -> None:
    from rule_engine.api.error_handlers import ANSWERS, answer_for

    documented = _doc_table()
    assert {name: status for name, (status, _) in documented.items()} == {
        cls.__name__: answer.status for cls, answer in ANSWERS.items()
    }
    listed = {cls.__name__: cls for cls in ANSWERS}
    for name, (status, covered) in documented.items():
        expected = sorted(
            cls.__name__
            for cls in exception_classes
            if cls not in ANSWERS and next(k for k in cls.__mro__ if k in ANSWERS) is listed[name]
        )
        assert sorted(covered) == expected, name
        assert all(answer_for(cls).status == status for cls in exception_classes if cls.__name__ in covered)


def test_every_class_maps_to_a_documented_status(exception_classes: list[type[BaseException]]) -> None:
    from rule_engine.api.error_handlers import answer_for

    documented = {status for status, _ in _doc_table().values()}
    for cls in exception_classes:
        assert answer_for(cls).status in documented, cls


# -- through a route ------------------------------------------------------------------------------

MESSAGE = "what went wrong, and what to change"


ISSUES = [Issue("actions[0].values", "unknown column 'x'", "column"), Issue("name", "too long")]
#: Arguments of the classes whose constructor is not ``cls(message)``.
ARGUMENTS: dict[str, tuple[Any, ...]] = {
    "RuleValidationError": (ISSUES,),
    "EventError": ([Issue("event.operation", "missing", "missing")],),
    "TemplateLimitError": ("max_output", 10, 20, "the output"),
    "NotRunnableError": (MESSAGE, 30),
    "YamlBodyError": ("the YAML body cannot be read", ISSUES),
    "AppDatabaseError": ("app_db", "is not reachable"),
    "BrokenDependentsError": (MESSAGE, ISSUES),
    "ConnectionNotFoundError": ("app_db",),
    "ConnectionUnusableError": ("app_db", "it is a 'http' connection, not a SQL database"),
    "ActiveDefinitionsQuotaError": ("acme", 3, 3),
    "EventQuotaError": ("acme", 100, 42),
}


def _instance(cls: type[BaseException]) -> BaseException:
    if cls.__name__ == "UnexpandedTemplateError":  # takes a UseTemplate node: its message is enough
        error = cls.__new__(cls)
        BaseException.__init__(error, MESSAGE)
        return error
    return cls(*ARGUMENTS.get(cls.__name__, (MESSAGE,)))


@pytest.fixture(scope="module")
def raising_client() -> Iterator[tuple[TestClient, dict[str, BaseException]]]:
    from rule_engine.api.error_handlers import install_error_handlers

    app = FastAPI()
    install_error_handlers(app)
    raised: dict[str, BaseException] = {}

    @app.get("/raise/{name}")
    def raise_it(name: str) -> None:
        raise raised[name]

    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, raised


def test_raising_each_class_in_a_route_answers_its_mapped_status(
    exception_classes: list[type[BaseException]],
    raising_client: tuple[TestClient, dict[str, BaseException]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    from rule_engine.api.error_handlers import answer_for

    client, raised = raising_client
    for cls in exception_classes:
        error = raised[cls.__name__] = _instance(cls)
        answer = answer_for(cls)
        caplog.clear()
        response = client.get(f"/raise/{cls.__name__}")
        body: dict[str, Any] = response.json()
        assert response.status_code == answer.status, (cls, body)
        if answer.detail is None:
            assert body["detail"] == str(error), cls
        else:
            assert MESSAGE not in body["detail"], cls
        if answer.status == 500:  # never the error's message: its class, and a line in the log
            assert body["detail"].startswith(("internal error", "the definition", "a stored")), cls
            assert cls.__name__ in body["detail"], cls
        if answer.status >= 500:
            assert "errors" not in body, cls
            assert any(record.levelname == "ERROR" for record in caplog.records), cls
        else:
            assert not caplog.records, cls


def test_bodies_and_headers_of_particular_answers(
    by_name: dict[str, type[BaseException]],
    raising_client: tuple[TestClient, dict[str, BaseException]],
) -> None:
    client, raised = raising_client

    def answer(error: BaseException) -> Any:
        raised["it"] = error
        return client.get("/raise/it")

    def error(name: str, *args: Any) -> BaseException:
        return by_name[name](*args) if args else _instance(by_name[name])

    invalid = answer(error("RuleValidationError"))
    assert invalid.status_code == 422
    assert invalid.json() == {
        "detail": "the definition has 2 problems",
        "errors": [
            {"path": "actions[0].values", "message": "unknown column 'x'", "code": "column"},
            {"path": "name", "message": "too long", "code": "invalid"},
        ],
    }
    unreadable = answer(by_name["DefinitionLoadError"]("bad YAML", line=2)).json()
    assert unreadable == {
        "detail": "the definition cannot be read",
        "errors": [{"path": "(document)", "message": "bad YAML", "code": "load"}],
    }
    event = answer(error("EventError"))
    assert event.status_code == 422 and event.json()["errors"][0]["path"] == "event.operation"
    assert answer(error("RuleTestError", "a data trigger")).json() == {"detail": "a data trigger"}
    stale = answer(error("StaleWriteError", "changed since you read it"))
    assert (stale.status_code, stale.json()) == (412, {"detail": "changed since you read it"})
    down = answer(error("StoreUnavailableError", "connection refused"))
    assert (down.status_code, down.headers["Retry-After"]) == (503, "5")
    assert down.json() == {"detail": "the rule store is unreachable; try again later"}
    assert answer(error("StoreError", "no schema")).json() == {
        "detail": "the rule store is not ready; try again later"
    }
    waiting = answer(error("NotRunnableError", "Airflow does not know DAG x yet", 30))
    assert (waiting.status_code, waiting.headers["Retry-After"]) == (409, "30")
    assert answer(error("NotRunnableError", "paused")).headers.get("Retry-After") is None
    missing = answer(error("ConnectionNotFoundError", "app_db"))
    assert (missing.status_code, missing.json()) == (
        503,
        {"detail": "connection 'app_db' is not defined in Airflow; ask the platform administrators"},
    )
    assert "Retry-After" not in missing.headers
