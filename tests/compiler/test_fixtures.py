"""The definition format's contract: the local fixtures (tests/fixtures/definitions), good and bad, and
the external shared set when it sits beside the checkout (``SHARED_FIXTURES`` in tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rule_compiler.catalog import Catalog
from rule_compiler.definitions import ConditionTemplateDefinition
from rule_compiler.errors import DefinitionError, DefinitionLoadError, RuleValidationError
from rule_compiler.loading import read_definition_file
from rule_compiler.registration import Compiled, compile_document
from rule_compiler.validation import validate_definition
from tests.conftest import DEMO_CATALOG, LOCAL_FIXTURES, SHARED_FIXTURES, unavailable

#: Condition templates the fixtures may `use` (each valid itself, and used by name).
TEMPLATES = LOCAL_FIXTURES / "templates"


def _catalog() -> Catalog:
    return Catalog.model_validate(yaml.safe_load(DEMO_CATALOG.read_text()))


def fixture_templates() -> dict[str, ConditionTemplateDefinition]:
    """The templates of ``templates/``, validated in an order that lets them use each other."""
    raw = {p.stem: read_definition_file(p) for p in sorted(TEMPLATES.glob("*.yaml"))}
    parsed = {name: ConditionTemplateDefinition.model_validate(data) for name, data in raw.items()}
    for name, data in raw.items():
        assert validate_definition(data, None, templates=parsed).name == name
    return parsed


def _compile(path: Path) -> object:
    return compile_document(
        read_definition_file(path), _catalog(), templates=fixture_templates(), source=str(path)
    )


def _expectations(path: Path) -> tuple[str, str]:
    head = dict(
        line[2:].split(": ", 1) for line in path.read_text().splitlines()[:2] if line.startswith("# expect-")
    )
    return head["expect-error-at"], head["expect-message"]


def _issues(path: Path) -> list[tuple[str, str]]:
    try:
        _compile(path)
    except RuleValidationError as exc:
        return [(i.path, i.message) for i in exc.issues]
    except DefinitionLoadError as exc:
        return [(exc.issue.path, exc.issue.message)]
    return []


def _files(folder: Path, kind: str) -> list[Path]:
    return sorted((folder / kind).glob("*.yaml"))


SETS = {"local": LOCAL_FIXTURES, "shared": SHARED_FIXTURES}


def _params(kind: str) -> list[object]:
    params = [pytest.param(p, id=f"local-{p.stem}") for p in _files(LOCAL_FIXTURES, kind)]
    params += [pytest.param(p, id=f"shared-{p.stem}") for p in _files(SHARED_FIXTURES, kind)]
    return params


def test_shared_fixtures_are_present() -> None:
    if not SHARED_FIXTURES.is_dir():
        unavailable(f"shared fixtures not beside the checkout ({SHARED_FIXTURES})")
    assert _files(SHARED_FIXTURES, "good") and _files(SHARED_FIXTURES, "bad")


def test_local_copy_covers_the_shared_set() -> None:
    if not SHARED_FIXTURES.is_dir():
        unavailable(f"shared fixtures not beside the checkout ({SHARED_FIXTURES})")
    for kind in ("good", "bad"):
        local = {p.name for p in _files(LOCAL_FIXTURES, kind)}
        assert {p.name for p in _files(SHARED_FIXTURES, kind)} <= local


@pytest.mark.parametrize("path", _params("good"))
def test_good_definition_validates_and_compiles(path: Path) -> None:
    compiled = _compile(path)
    if not isinstance(compiled, Compiled):  # a condition template: stored, never a DAG
        assert compiled.dag_id == f"condition_template__acme__{path.stem}"  # type: ignore[attr-defined]
        return
    assert compiled.spec.dag_id == f"rule__acme__{path.stem}"
    first = "wait_for_data" if compiled.spec.schedule.kind == "data" else "evaluate_conditions"
    assert compiled.spec.tasks[0].task_id == first


@pytest.mark.parametrize("path", _params("bad"))
def test_bad_definition_is_rejected_at_its_path(path: Path) -> None:
    where, words = _expectations(path)
    issues = _issues(path)
    assert issues, f"{path.name} was accepted"
    at_path = [message for issue_path, message in issues if issue_path == where]
    assert at_path, f"no issue at {where}; got {issues}"
    assert any(words.lower() in message.lower() for message in at_path), f"'{words}' not in {at_path}"


def test_every_problem_is_reported_at_once() -> None:
    data = yaml.safe_load((LOCAL_FIXTURES / "good" / "escalate-vip-orders.yaml").read_text())
    data["name"] = "Bad Name"
    data["trigger"]["events"] = ["inserted"]
    data["actions"][0]["retries"] = 99
    with pytest.raises(RuleValidationError) as caught:
        compile_document(data, _catalog())
    paths = {issue.path for issue in caught.value.issues}
    assert {"name", "trigger.events[0]", "actions[0].retries"} <= paths


def test_fixture_templates_are_valid_and_used() -> None:
    templates = fixture_templates()
    assert {"big-order", "vip-customer", "big-vip-order"} <= templates.keys()


def test_load_errors_are_definition_errors() -> None:
    assert issubclass(DefinitionLoadError, DefinitionError)
    assert issubclass(RuleValidationError, DefinitionError)
