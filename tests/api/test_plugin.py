"""The plugin mounts the app in Airflow's own api-server app (built in-process, ~3 s): deny by
default there too, the docs under /automations, and a write asks Airflow to re-parse the loader file."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from rule_compiler.store import RuleStore
from tests.api.conftest import catalog_for, rule_body


@pytest.fixture(scope="module")
def airflow_client(
    airflow_db: None, issue_token: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    url = f"sqlite:///{tmp_path_factory.mktemp('mounted') / 'automation.db'}"
    store = RuleStore(url)
    store.upgrade()
    store.put_catalog(organization="acme", catalog=catalog_for("acme"), actor="setup")
    store.put_membership(organization="acme", username="ed", role="editor", actor="setup")
    patch = pytest.MonkeyPatch()
    patch.setenv("AUTOMATION_STORE_URL", url)
    from airflow.api_fastapi.app import create_app

    with TestClient(create_app(), raise_server_exceptions=False) as client:
        yield client
    patch.undo()
    store.close()


def test_the_plugin_module_does_not_build_the_app_on_import() -> None:
    code = (
        "import sys, rule_engine_plugin; "
        "print(sorted(m for m in sys.modules if m.startswith(('rule_engine.api', 'fastapi', 'limits'))))"
    )
    plugins = Path(__file__).resolve().parents[2] / "plugins"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=plugins, capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == "[]", done.stdout


def test_mounted_at_automations_and_closed_to_anonymous(airflow_client: TestClient) -> None:
    for path in ("/automations/api/v1/rules", "/automations/openapi.json", "/automations/docs"):
        assert airflow_client.get(path).status_code == 401, path


def test_docs_and_schema_for_a_signed_in_user(
    airflow_client: TestClient, issue_token: Callable[[str], str]
) -> None:
    headers = {"Authorization": f"Bearer {issue_token('ed')}"}
    docs = airflow_client.get("/automations/docs", headers=headers)
    assert docs.status_code == 200 and "/automations/openapi.json" in docs.text
    schema = airflow_client.get("/automations/openapi.json", headers=headers).json()
    assert "/api/v1/rules" in schema["paths"]


def test_a_write_asks_airflow_to_reparse_the_loader_file(
    airflow_client: TestClient, issue_token: Callable[[str], str]
) -> None:
    from airflow.models.dagbag import DagPriorityParsingRequest
    from airflow.utils.session import create_session

    headers = {"Authorization": f"Bearer {issue_token('ed')}"}
    response = airflow_client.post("/automations/api/v1/rules", json=rule_body(), headers=headers)
    assert response.status_code == 201, response.text
    with create_session() as session:
        requests = session.execute(
            sa.select(DagPriorityParsingRequest.bundle_name, DagPriorityParsingRequest.relative_fileloc)
        ).all()
    assert ("dags-folder", "automation_dags.py") in [tuple(r) for r in requests]
    assert Path(__file__).resolve().parents[2].joinpath("dags", "automation_dags.py").exists()
