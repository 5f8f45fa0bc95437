"""Real `dag.test()` runs: report storage keeps organizations apart (issue 13).

Two organizations' reports of the same name write to the default storage under their own folders
(`<storage>/<org>/...`), so neither overwrites the other; their run folders differ too. A rendered
`path` that would leave the organization's folder (`..`, an absolute path, a URL-escaped `..`, a
backslash, a static `{{ '..' }}` in a spec registered before the check), or a symbolic link planted
in the folder, fails that delivery for good with a clear error and writes nothing outside.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from rule_compiler.catalog import Catalog
from rule_compiler.compiler.report import DELIVER_TASK
from rule_compiler.errors import RuleValidationError
from rule_compiler.registration import Compiled, compile_document, register
from rule_compiler.reporting.workdir import run_workdir
from rule_compiler.store import RuleStore
from rule_compiler.store import report_runs as log
from tests.airflow.conftest import dagbag
from tests.airflow.report_support import WEEK_END, WEEK_RUN, task_states
from tests.conftest import DEMO_CATALOG

pytestmark = [pytest.mark.airflow, pytest.mark.usefixtures("airflow_db")]

INTERVAL_FOLDER = "2026-11-23T06-00-00+00-00"  # {{ run.interval_end }}, as a folder name
SQL = (
    "SELECT '{org}' AS organization, COUNT(*) AS orders FROM orders "
    "WHERE created_at >= :data_interval_start AND created_at < :data_interval_end"
)


def _report(organization: str, deliver: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "kind": "report",
        "name": "weekly-sales",
        "organization": organization,
        "schedule": {"cron": "0 7 * * 1", "timezone": "Europe/Berlin"},
        "queries": [{"id": "daily", "connection": "app_db", "sql": SQL.format(org=organization)}],
        "formats": ["csv"],
        "deliver": deliver,
        **extra,
    }


def _catalog(store: RuleStore, organization: str) -> Catalog:
    if store.get_catalog(organization) is None:
        data = {**yaml.safe_load(DEMO_CATALOG.read_text()), "organization": organization}
        store.put_catalog(organization=organization, catalog=data, actor="test")
    return Catalog.model_validate(store.get_catalog(organization))


def _register(store: RuleStore, document: dict[str, Any], **first_delivery: Any) -> Compiled:
    """Compile and store a report; ``first_delivery`` edits delivery 0 of the compiled spec as no
    validation would let it be (a spec registered before the checks), with no retries."""
    compiled = compile_document(document, _catalog(store, document["organization"]))
    assert isinstance(compiled, Compiled), compiled
    deliver = next(task for task in compiled.spec.tasks if task.task_id == DELIVER_TASK)
    current: Any = deliver.params["deliveries"]
    deliveries = [dict(delivery) for delivery in current]
    deliveries[0].update(first_delivery)
    edited = deliver.model_copy(update={"params": {**deliver.params, "deliveries": deliveries}, "retries": 0})
    tasks = tuple(edited if task.task_id == DELIVER_TASK else task for task in compiled.spec.tasks)
    spec = compiled.spec.model_copy(update={"tasks": tasks})
    compiled = dataclasses.replace(compiled, spec=spec, spec_json=spec.to_json(), spec_hash=spec.spec_hash)
    register(store, compiled, actor="test")
    return compiled


def _files(folder: Path) -> dict[str, str]:
    """Every file (links too, not followed) under ``folder``, by relative path: its text."""
    if not folder.exists():
        return {}
    found = {}
    for path in sorted(folder.rglob("*")):
        if path.is_symlink() or path.is_file():
            found[str(path.relative_to(folder))] = "-> link" if path.is_symlink() else path.read_text()
    return found


def test_two_organizations_reports_of_the_same_name_write_to_their_own_folders(
    store: RuleStore, app_db: sa.Engine, folders: dict[str, Path]
) -> None:
    _register(store, _report("acme", [{"type": "storage"}]))  # the default path: name/interval end
    _register(store, _report("globex", [{"type": "storage"}]))
    bag = dagbag()

    acme = bag.dags["report__acme__weekly-sales"].test(logical_date=WEEK_RUN)
    globex = bag.dags["report__globex__weekly-sales"].test(logical_date=WEEK_RUN)

    assert str(acme.state) == str(globex.state) == "success", (task_states(acme), task_states(globex))
    stored = _files(folders["storage"])
    acme_csv = f"acme/weekly-sales/{INTERVAL_FOLDER}/weekly-sales.csv"
    globex_csv = f"globex/weekly-sales/{INTERVAL_FOLDER}/weekly-sales.csv"
    assert sorted(stored) == [acme_csv, globex_csv]  # two files, neither overwrote the other
    assert stored[acme_csv].splitlines()[1].startswith("acme,")
    assert stored[globex_csv].splitlines()[1].startswith("globex,")
    (acme_delivery,) = log.deliveries_of(store.engine, "acme/weekly-sales", WEEK_END)
    (globex_delivery,) = log.deliveries_of(store.engine, "globex/weekly-sales", WEEK_END)
    assert acme_delivery.detail is not None and globex_delivery.detail is not None
    assert str(acme_delivery.detail["folder"]).endswith(f"/reports/acme/weekly-sales/{INTERVAL_FOLDER}")
    assert str(globex_delivery.detail["folder"]).endswith(f"/reports/globex/weekly-sales/{INTERVAL_FOLDER}")
    # the run folders (query results, rendered files) are per DAG, and a DAG id names the organization
    acme_work = run_workdir(folders["work"], "report__acme__weekly-sales", acme.run_id)
    globex_work = run_workdir(folders["work"], "report__globex__weekly-sales", globex.run_id)
    assert acme_work != globex_work
    assert (acme_work / "daily.csv").read_text().splitlines()[1].startswith("acme,")
    assert (globex_work / "daily.csv").read_text().splitlines()[1].startswith("globex,")


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("../globex/x.csv", "the folder may not climb out of the location ('..')"),
        ("/etc/x", "remove the leading '/' (no absolute paths)"),
        ("{{ '..' }}/x", "the folder may not climb out of the location ('..')"),
        ("weekly\\..\\..\\globex", "the folder may not climb out of the location ('..')"),
        ("%2e%2e/globex", "written as URL escapes"),
    ],
)
def test_a_static_path_leaving_the_folder_is_refused_at_registration(
    store: RuleStore, path: str, words: str
) -> None:
    with pytest.raises(RuleValidationError) as refused:
        compile_document(_report("acme", [{"type": "storage", "path": path}]), _catalog(store, "acme"))
    assert [(issue.path, words in issue.message) for issue in refused.value.issues] == [
        ("deliver[0].path", True)
    ]


def test_a_rendered_path_leaving_the_organizations_folder_fails_its_delivery_writing_nothing(
    store: RuleStore, app_db: sa.Engine, folders: dict[str, Path], tmp_path: Path
) -> None:
    """Parameters decide these paths, so registration cannot see them; delivery 0 holds the static
    `{{ '..' }}` of a spec registered before the check. The last delivery still goes out."""
    escapes = {
        "up": "../globex",
        "absolute": str(tmp_path / "outside"),
        "escaped": "%2e%2e/globex",
        "backslash": "..\\globex",
    }
    document = _report(
        "acme",
        [
            {"type": "storage", "path": "weekly-sales/{{ run.interval_end }}"},
            *({"type": "storage", "path": f"{{{{ parameters.{name} }}}}/x"} for name in escapes),
            {"type": "storage", "path": "weekly-sales/{{ run.interval_end }}"},
        ],
        parameters=[{"name": name, "type": "string", "default": value} for name, value in escapes.items()],
    )
    _register(store, document, path="{{ '..' }}/globex")

    dag_run = dagbag().dags["report__acme__weekly-sales"].test(logical_date=WEEK_RUN)

    states = task_states(dag_run)
    last = len(escapes) + 1
    assert [states[f"deliver[{i}]"] for i in range(last)] == ["failed"] * last, states
    assert states[f"deliver[{last}]"] == "success" and str(dag_run.state) == "failed"
    deliveries = log.deliveries_of(store.engine, "acme/weekly-sales", WEEK_END)
    assert [(d.status, d.attempts) for d in deliveries] == [("failed", 1)] * last + [("sent", 1)]
    errors = [d.error or "" for d in deliveries[:last]]
    assert errors[0] == (
        "PermanentActionError: the storage path \"{{ '..' }}/globex\" rendered to '../globex': it may "
        "not contain '.' or '..' folders; nothing was written"
    )
    assert "rendered to '../globex/x': it may not contain '.' or '..' folders" in errors[1]
    assert "remove the leading '/' (no absolute paths)" in errors[2]
    assert "written as URL escapes (%2e, %2f)" in errors[3]
    assert "rendered to '..\\\\globex/x': it may not contain '.' or '..' folders" in errors[4]
    assert all(error.startswith("PermanentActionError: the storage path ") for error in errors)
    # only the last delivery wrote, inside acme's folder; nothing anywhere else
    assert list(_files(folders["storage"])) == [f"acme/weekly-sales/{INTERVAL_FOLDER}/weekly-sales.csv"]
    assert not (tmp_path / "outside").exists() and not (tmp_path / "x").exists()


def test_a_symbolic_link_in_the_organizations_folder_is_never_followed(
    store: RuleStore, app_db: sa.Engine, folders: dict[str, Path], tmp_path: Path
) -> None:
    """Planted links: a folder pointing outside, a folder pointing inside the organization's folder,
    a file pointing outside. Each delivery through one fails for good; the link target is untouched."""
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim.txt"
    victim.write_text("untouched")
    org = folders["storage"] / "acme"
    (org / "real").mkdir(parents=True)
    (org / "escape").symlink_to(outside, target_is_directory=True)
    (org / "inside").symlink_to(org / "real", target_is_directory=True)
    (org / "files" / INTERVAL_FOLDER).mkdir(parents=True)
    (org / "files" / INTERVAL_FOLDER / "weekly-sales.csv").symlink_to(victim)
    paths = ["escape/{{ run.interval_end }}", "inside", "files/{{ run.interval_end }}", "ok"]
    _register(store, _report("acme", [{"type": "storage", "path": path} for path in paths]))

    dag_run = dagbag().dags["report__acme__weekly-sales"].test(logical_date=WEEK_RUN)

    states = task_states(dag_run)
    assert [states[f"deliver[{i}]"] for i in range(4)] == ["failed", "failed", "failed", "success"], states
    escape, inside, files, ok = log.deliveries_of(store.engine, "acme/weekly-sales", WEEK_END)
    assert (escape.status, escape.attempts) == ("failed", 1)
    assert escape.error == (
        f"PermanentActionError: the storage folder 'escape/{INTERVAL_FOLDER}' leads out of the "
        "organization's storage folder through a symbolic link; nothing was written (remove the link)"
    )
    assert inside.error == (
        "PermanentActionError: the storage folder 'inside' holds a symbolic link; report storage "
        "never follows links, so nothing was written there (remove the link)"
    )
    assert "leads out of the organization's storage folder through a symbolic link" in (files.error or "")
    assert ok.status == "sent"
    assert sorted(os.listdir(outside)) == ["victim.txt"] and victim.read_text() == "untouched"
    assert list((org / "real").iterdir()) == []
    assert _files(org) == {
        "escape": "-> link",
        "inside": "-> link",
        f"files/{INTERVAL_FOLDER}/weekly-sales.csv": "-> link",
        "ok/weekly-sales.csv": (org / "ok" / "weekly-sales.csv").read_text(),
    }


def test_an_organizations_folder_that_is_a_link_to_another_ones_is_refused(
    store: RuleStore, app_db: sa.Engine, folders: dict[str, Path]
) -> None:
    acme_file = folders["storage"] / "acme" / "weekly-sales.csv"
    acme_file.parent.mkdir(parents=True)
    acme_file.write_text("acme's")
    (folders["storage"] / "globex").symlink_to(acme_file.parent, target_is_directory=True)
    _register(store, _report("globex", [{"type": "storage", "path": "report"}]))

    dag_run = dagbag().dags["report__globex__weekly-sales"].test(logical_date=WEEK_RUN)

    assert task_states(dag_run)["deliver[0]"] == "failed"
    (delivery,) = log.deliveries_of(store.engine, "globex/weekly-sales", WEEK_END)
    assert "leads out of the organization's storage folder through a symbolic link" in (delivery.error or "")
    assert sorted(os.listdir(acme_file.parent)) == ["weekly-sales.csv"] and acme_file.read_text() == "acme's"
