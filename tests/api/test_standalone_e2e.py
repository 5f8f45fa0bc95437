"""One end-to-end test against the real api-server started by ``airflow standalone``.

Cost: about 60-90 s on this 2-core machine (standalone start ~15-25 s, then a parse, a run and its
log), so it is marked ``slow``. It logs in with a password through ``POST /auth/token`` (a real JWT),
creates a rule through ``/automations/api/v1``, and checks that the DAG appears because the API asked
Airflow to re-parse the loader file (the periodic re-parse is set to 10 minutes here), that it runs,
and that its automation log is readable through ``/logs``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from rule_compiler.store import RuleStore
from tests.api.conftest import catalog_for, rule_body
from tests.conftest import ROOT
from tests.standalone import Standalone, connection_env, run_standalone

pytestmark = [pytest.mark.slow, pytest.mark.airflow]

DAG_ID = "rule__acme__flag-big-paid-orders"


def _demo_db(path: Path) -> None:
    spec = importlib.util.spec_from_file_location(
        "create_demo_db", ROOT / "include" / "demo" / "create_demo_db.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    engine = sa.create_engine(f"sqlite:///{path}")
    module.create_demo_db(engine, datetime(2026, 11, 20, 12, 0, tzinfo=UTC))
    engine.dispose()


@pytest.fixture
def standalone(tmp_path: Path) -> Iterator[Standalone]:
    store_url = f"sqlite:///{tmp_path / 'automation.db'}"
    store = RuleStore(store_url)
    store.upgrade()
    store.put_catalog(organization="acme", catalog=catalog_for("acme"), actor="setup")
    store.put_membership(organization="acme", username="ed", role="editor", actor="setup")
    store.close()
    _demo_db(tmp_path / "demo_app.db")
    env = {
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
        "AUTOMATION_STORE_URL": store_url,
        "AUTOMATION_SNAPSHOT_PATH": str(tmp_path / "snapshot.json"),
        "AIRFLOW_CONN_APP_DB": connection_env(f"sqlite:///{tmp_path / 'demo_app.db'}"),
    }
    with run_standalone(
        tmp_path / "airflow", users={"ed": ("user", "ed-password")}, parallelism=2, env=env
    ) as running:
        yield running


def test_rule_created_through_the_api_runs_and_its_log_is_readable(standalone: Standalone) -> None:
    standalone.wait_healthy()
    client = httpx.Client(base_url=standalone.base_url, timeout=30)

    assert client.get("/automations/api/v1/rules").status_code == 401
    assert client.get("/automations/docs").status_code == 401
    login = client.post("/auth/token", json={"username": "ed", "password": "ed-password"})
    assert login.status_code == 201, login.text
    auth = {"Authorization": f"Bearer {login.json()['access_token']}"}
    assert client.get("/automations/docs", headers=auth).status_code == 200

    created = client.post("/automations/api/v1/rules", json=rule_body(), headers=auth)
    assert created.status_code == 201, created.text
    assert created.json()["dag_id"] == DAG_ID

    dag = standalone.wait_for(
        "the DAG to be parsed after the re-parse request",
        lambda: (r := client.get(f"/api/v2/dags/{DAG_ID}", headers=auth)).status_code == 200 and r.json(),
        120,
    )
    assert dag["is_paused"] is False
    run = client.post(f"/api/v2/dags/{DAG_ID}/dagRuns", json={"logical_date": None}, headers=auth)
    assert run.status_code == 200, run.text
    run_id = run.json()["dag_run_id"]
    state = standalone.wait_for(
        "the run to finish",
        lambda: (
            (s := client.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}", headers=auth).json()["state"])
            in {"success", "failed"}
            and s
        ),
        180,
    )
    assert state == "success"

    logs = client.get(
        "/automations/api/v1/logs", params={"rule": "flag-big-paid-orders"}, headers=auth
    ).json()
    [entry] = logs["items"]
    assert (entry["run_id"], entry["status"]) == (run_id, "success")
    detail = client.get(f"/automations/api/v1/logs/{entry['id']}", headers=auth).json()
    assert detail["trace"] is not None
    assert [(a["action_id"], a["status"]) for a in detail["actions"]] == [("flag", "success")]
