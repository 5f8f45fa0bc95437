"""A storage delivery's `path` can never leave its root (issue 13): its static text is checked at
registration (at `deliver[n].path`), the rendered text on the worker. The run-time side, with real
folders and planted links: tests/airflow/test_report_storage_isolation.py."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from rule_compiler.catalog import Catalog
from rule_compiler.errors import PermanentActionError, RuleValidationError
from rule_compiler.registration import Compiled, compile_document
from rule_compiler.reporting.workdir import run_workdir
from rule_compiler.runtime.report_delivery import ReportRunInfo, storage_folder
from rule_compiler.storage_paths import (
    CLIMB,
    DEFAULT_STORAGE_PATH,
    StoragePathError,
    clean_folder,
    is_inside,
    organization_folder,
    static_path_problem,
)
from tests.conftest import DEMO_CATALOG

ABSOLUTE = "the folder is relative to the storage location: remove the leading '/' (no absolute paths)"
ESCAPED = "the folder may not contain '/', '.' or '..' written as URL escapes (%2e, %2f)"


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("../globex/x.csv", CLIMB),
        ("weekly/../../other-org", CLIMB),
        ("weekly/..", CLIMB),
        ("weekly\\..\\..\\globex", CLIMB),  # the worker reads a backslash as a folder separator
        ("weekly/.. /globex", CLIMB),  # the worker would clean ".. " to ".."
        ("{{ '..' }}/x", CLIMB),  # a constant expression is static text
        ("{{ '.' ~ '.' }}/x", CLIMB),
        ("{{ '..' | lower }}/x", CLIMB),
        ("./x", "the folder may not contain '.' folders: leave them out"),
        ("/etc/x", ABSOLUTE),
        ("\\etc\\x", ABSOLUTE),
        (" /etc/x", ABSOLUTE),
        ("C:/reports", ABSOLUTE),
        ("{{ '/etc' }}/x", ABSOLUTE),
        ("%2e%2e/globex", ESCAPED),
        ("%2E%2E/globex", ESCAPED),
        ("%252e%252e/globex", ESCAPED),  # escaped twice
        ("weekly%2f..%2fglobex", ESCAPED),
        ("%2fetc", ESCAPED),
        ("a\x00b", "the folder may not contain a NUL byte"),
    ],
)
def test_a_static_path_that_leaves_the_root_is_refused(template: str, problem: str) -> None:
    assert static_path_problem(template) == problem


@pytest.mark.parametrize(
    "template",
    [
        DEFAULT_STORAGE_PATH,
        "weekly-sales/{{ run.interval_end }}",
        "sales/{{ parameters.region }}/{{ run.interval_end }}",
        "{{ report.name }}..x",  # a name with dots in it, not a '..' folder
        "a...b/c",
        "{{ parameters.folder }}/x",  # only the run knows: the worker checks it
        "{% if parameters.x %}..{% endif %}/x",
        "50% off/x",
        "{{ x",  # does not parse: the template check reports it
    ],
)
def test_a_static_path_that_stays_inside_or_depends_on_the_run_is_left_to_the_worker(template: str) -> None:
    assert static_path_problem(template) is None


@pytest.mark.parametrize(
    ("text", "folder"),
    [
        ("weekly-sales/2026-11-23T06:00:00+00:00", "weekly-sales/2026-11-23T06-00-00+00-00"),
        ("a//b/", "a/b"),
        ("a\\b", "a/b"),
        ("café/x y", "caf/x-y"),
        ("50% off", "50-off"),
        ("a...b", "a...b"),
    ],
)
def test_a_rendered_path_is_cleaned_into_plain_folder_names(text: str, folder: str) -> None:
    assert clean_folder(text) == folder


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("../globex", "'.' or '..' folders"),
        ("a/../../b", "'.' or '..' folders"),
        ("..\\globex", "'.' or '..' folders"),
        ("a/-..-/b", "'.' or '..' folders"),  # cleaned to '..'
        ("./a", "'.' or '..' folders"),
        ("/etc/x", "no absolute paths"),
        ("\\\\server\\share", "no absolute paths"),
        ("C:\\reports", "no absolute paths"),
        ("%2e%2e/globex", "URL escapes"),
        ("a%2F..%2Fb", "URL escapes"),
        ("a\x00b", "NUL byte"),
        ("", "it names no folder"),
        ("//", "no absolute paths"),
        ("-/:", "it names no folder"),
        ("x" * 256, "longer than 255"),
    ],
)
def test_a_rendered_path_that_could_leave_the_root_is_refused(text: str, words: str) -> None:
    with pytest.raises(StoragePathError) as refused:
        clean_folder(text)
    assert words in str(refused.value)


def test_the_worker_fails_such_a_delivery_for_good_naming_template_and_rendered_text() -> None:
    info = ReportRunInfo(
        report_id="acme/weekly-sales",
        description="",
        run_id="r",
        interval_start="2026-11-16T06:00:00+00:00",
        interval_end="2026-11-23T06:00:00+00:00",
        logical_date=None,
        parameters={"folder": "../globex"},
    )
    assert storage_folder(DEFAULT_STORAGE_PATH, info) == "weekly-sales/2026-11-23T06-00-00+00-00"
    with pytest.raises(PermanentActionError) as refused:
        storage_folder("{{ parameters.folder }}/x", info)
    assert str(refused.value) == (
        "the storage path '{{ parameters.folder }}/x' rendered to '../globex/x': it may not contain "
        "'.' or '..' folders; nothing was written"
    )


def test_an_organizations_folder_is_its_slug_and_nothing_else() -> None:
    assert organization_folder("acme") == "acme"
    for bad in ("..", "acme/../globex", "", "Acme", "a b", "/etc"):
        with pytest.raises(StoragePathError):
            organization_folder(bad)


@pytest.mark.parametrize(
    ("root", "target", "inside"),
    [
        ("/srv/reports/acme", "/srv/reports/acme", True),
        ("/srv/reports/acme", "/srv/reports/acme/weekly/x.csv", True),
        ("/srv/reports/acme", "/srv/reports/acme-evil/x.csv", False),
        ("/srv/reports/acme", "/srv/reports/globex/x.csv", False),
        ("/srv/reports/acme", "/srv/reports/acme/../globex", False),
        ("/srv/reports/acme/", "/srv/reports/acme/x", True),
    ],
)
def test_is_inside_compares_whole_folders(root: str, target: str, inside: bool) -> None:
    assert is_inside(root, target) is inside


def _report(path: str) -> dict[str, Any]:
    return {
        "kind": "report",
        "name": "stored",
        "organization": "acme",
        "schedule": {"cron": "0 7 * * 1"},
        "parameters": [{"name": "folder", "type": "string", "default": "weekly"}],
        "queries": [{"id": "q", "connection": "app_db", "sql": "SELECT id, total FROM orders"}],
        "formats": ["csv"],
        "deliver": [{"type": "storage", "path": path}],
    }


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("../globex/x.csv", CLIMB),
        ("/etc/x", ABSOLUTE),
        ("{{ '..' }}/x", CLIMB),
        ("%2e%2e/x", ESCAPED),
    ],
)
def test_registration_refuses_a_static_path_leaving_the_root_at_its_json_path(
    path: str, problem: str
) -> None:
    catalog = Catalog.model_validate(yaml.safe_load(DEMO_CATALOG.read_text()))
    with pytest.raises(RuleValidationError) as refused:
        compile_document(_report(path), catalog)
    assert [(issue.path, issue.message) for issue in refused.value.issues] == [("deliver[0].path", problem)]


def test_registration_accepts_a_path_only_the_run_decides() -> None:
    catalog = Catalog.model_validate(yaml.safe_load(DEMO_CATALOG.read_text()))
    assert isinstance(compile_document(_report("{{ parameters.folder }}/x"), catalog), Compiled)


def test_run_folders_of_two_organizations_reports_of_the_same_name_differ(tmp_path: Any) -> None:
    """A report's run folder is ``<workdir>/<dag id>/<run id>``; the DAG id names the organization
    (``report__<org>__<name>``; slugs hold no ``_``, so no two reports share one)."""
    acme = run_workdir(tmp_path, "report__acme__weekly-sales", "scheduled__2026-11-16T06:00:00+00:00")
    globex = run_workdir(tmp_path, "report__globex__weekly-sales", "scheduled__2026-11-16T06:00:00+00:00")
    assert acme != globex and acme.parent.name == "report__acme__weekly-sales"
