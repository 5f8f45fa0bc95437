"""One end-to-end test against the real api-server started by ``airflow standalone``.

Cost: about 60-90 s on this 2-core machine (standalone start ~15-25 s, then a parse, a run and its
log), so it is marked ``slow``. It logs in with a password through ``POST /auth/token`` (a real JWT),
creates a rule through ``/automations/api/v1``, and checks that the DAG appears because the API asked
Airflow to re-parse the loader file (the periodic re-parse is set to 10 minutes here), that it runs,
and that its automation log is readable through ``/logs``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from rule_compiler.store import RuleStore
from tests.api.conftest import catalog_for, rule_body
from tests.conftest import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.airflow]

DAG_ID = "rule__acme__flag-big-paid-orders"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(what: str, check: Callable[[], Any], timeout: float, log: Path) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            value = check()
            if value:
                return value
        time.sleep(1)
    tail = log.read_text(errors="replace")[-4000:] if log.exists() else "(no log)"
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}; standalone log tail:\n{tail}")


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
def standalone(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    home = tmp_path / "airflow"
    home.mkdir()
    store_url = f"sqlite:///{tmp_path / 'automation.db'}"
    store = RuleStore(store_url)
    store.upgrade()
    store.put_catalog(organization="acme", catalog=catalog_for("acme"), actor="setup")
    store.put_membership(organization="acme", username="ed", role="editor", actor="setup")
    store.close()
    _demo_db(tmp_path / "demo_app.db")
    (home / "passwords.json").write_text(json.dumps({"ed": "ed-password"}))
    port = _free_port()
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": "2",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "ed:user",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(_free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(_free_port()),
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
        "AIRFLOW__API_AUTH__JWT_SECRET": "e2e-secret-" + "y" * 64,
        "AUTOMATION_STORE_URL": store_url,
        "AUTOMATION_SNAPSHOT_PATH": str(tmp_path / "snapshot.json"),
        "AIRFLOW_CONN_APP_DB": json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "demo_app.db")}),
    }
    log = tmp_path / "standalone.log"
    launcher = (
        "import os, signal; signal.signal(signal.SIGINT, signal.SIG_DFL); "
        "os.execvp('airflow', ['airflow', 'standalone'])"
    )
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", launcher],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield f"http://127.0.0.1:{port}", log
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=45)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def test_rule_created_through_the_api_runs_and_its_log_is_readable(standalone: tuple[str, Path]) -> None:
    base, log = standalone
    client = httpx.Client(base_url=base, timeout=30)
    _wait_for("the api-server", lambda: client.get("/api/v2/monitor/health").status_code == 200, 180, log)

    assert client.get("/automations/api/v1/rules").status_code == 401
    assert client.get("/automations/docs").status_code == 401
    login = client.post("/auth/token", json={"username": "ed", "password": "ed-password"})
    assert login.status_code == 201, login.text
    auth = {"Authorization": f"Bearer {login.json()['access_token']}"}
    assert client.get("/automations/docs", headers=auth).status_code == 200

    created = client.post("/automations/api/v1/rules", json=rule_body(), headers=auth)
    assert created.status_code == 201, created.text
    assert created.json()["dag_id"] == DAG_ID

    dag = _wait_for(
        "the DAG to be parsed after the re-parse request",
        lambda: (r := client.get(f"/api/v2/dags/{DAG_ID}", headers=auth)).status_code == 200 and r.json(),
        120,
        log,
    )
    assert dag["is_paused"] is False
    run = client.post(f"/api/v2/dags/{DAG_ID}/dagRuns", json={"logical_date": None}, headers=auth)
    assert run.status_code == 200, run.text
    run_id = run.json()["dag_run_id"]
    state = _wait_for(
        "the run to finish",
        lambda: (
            (s := client.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}", headers=auth).json()["state"])
            in {"success", "failed"}
            and s
        ),
        180,
        log,
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
