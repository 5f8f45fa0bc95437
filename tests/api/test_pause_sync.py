"""A rule whose DAG is paused in the Airflow UI reads as inactive through the API (Airflow's real
metadata DB), and activating it again unpauses the DAG even though the stored rule did not change."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from rule_engine.api.airflow_sync import notify_airflow

from rule_compiler.store import RuleStore
from tests.api.airflow_dags import dag_syncer, set_paused
from tests.api.conftest import Api, Recorder, rule_body

pytestmark = pytest.mark.airflow
PAUSED, RUNNING = "paused-in-the-ui", "left-running"


@pytest.fixture
def sync_dags(store: RuleStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[[], None]:
    return dag_syncer(store, monkeypatch, tmp_path)


def _create(api: Api, name: str) -> str:
    response = api.as_("ed").post("/rules", json={**rule_body(), "name": name})
    assert response.status_code == 201, response.text
    return str(response.headers["ETag"])


def _is_paused(dag_id: str) -> bool:
    import sqlalchemy as sa
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    with create_session() as session:
        return bool(session.scalar(sa.select(DagModel.is_paused).where(DagModel.dag_id == dag_id)))


def test_a_pause_in_airflow_reads_as_inactive(
    api: Api, store: RuleStore, sync_dags: Callable[[], None]
) -> None:
    _create(api, PAUSED)
    _create(api, RUNNING)
    sync_dags()
    vera = api.as_("vera")
    assert vera.get(f"/rules/{PAUSED}").json()["active"] is True
    set_paused(f"rule__acme__{PAUSED}", True)

    assert vera.get(f"/rules/{PAUSED}").json()["active"] is False
    listing = {r["name"]: r["active"] for r in vera.get("/rules").json()["items"]}
    assert listing == {PAUSED: False, RUNNING: True}
    assert store.get(organization="acme", kind="rule", name=PAUSED).active is True  # the store is unchanged


def test_activating_a_rule_paused_in_airflow_unpauses_its_dag(
    api: Api, recorder: Recorder, sync_dags: Callable[[], None]
) -> None:
    etag = _create(api, PAUSED)
    sync_dags()
    dag_id = f"rule__acme__{PAUSED}"
    set_paused(dag_id, True)
    api.client.app.state.on_change = notify_airflow  # type: ignore[attr-defined]  # the real hook

    response = api.as_("ed").patch(f"/rules/{PAUSED}", json={"active": True}, headers={"If-Match": etag})
    assert response.status_code == 200, response.text
    assert response.json()["version"] == 1  # nothing new was stored...
    assert _is_paused(dag_id) is False  # ...but Airflow was told to run it again
    assert response.json()["active"] is True
    assert api.as_("vera").get(f"/rules/{PAUSED}").json()["active"] is True


def test_an_unchanged_write_of_a_running_rule_does_not_notify(
    api: Api, recorder: Recorder, sync_dags: Callable[[], None]
) -> None:
    etag = _create(api, RUNNING)
    sync_dags()
    before = len(recorder.changes)
    response = api.as_("ed").patch(f"/rules/{RUNNING}", json={"active": True}, headers={"If-Match": etag})
    assert response.status_code == 200
    assert len(recorder.changes) == before
