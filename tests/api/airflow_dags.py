"""Airflow's metadata DB in the API tests: the DAGs the loader renders from the test store, runs, pauses.

``dag_syncer`` does what ``dag.test()`` does to make Airflow know DAGs: ``sync_bag_to_db`` of a
``BundleDagBag`` over ``dags/`` (whose loader reads the test store).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rule_compiler.store import RuleStore
from tests.conftest import ROOT


def dag_syncer(store: RuleStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[[], None]:
    """A ``sync()`` after which Airflow's metadata DB holds the DAGs the loader renders from ``store``."""
    monkeypatch.setenv("AUTOMATION_STORE_URL", store.url)
    monkeypatch.setenv("AUTOMATION_SNAPSHOT_PATH", str(tmp_path / "snapshot.json"))
    # the DAG processor rewrites a serialized DAG at most every 30 s; a test re-syncs at once
    monkeypatch.setenv("AIRFLOW__CORE__MIN_SERIALIZED_DAG_UPDATE_INTERVAL", "0")

    def sync() -> None:
        from airflow.dag_processing.bundles.manager import DagBundlesManager
        from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db

        DagBundlesManager().sync_bundles_to_db()  # type: ignore[no-untyped-call]
        dags = ROOT / "dags"
        bag = BundleDagBag(dag_folder=str(dags), bundle_path=dags, bundle_name="dags-folder")
        assert not bag.import_errors, bag.import_errors
        sync_bag_to_db(bag, "dags-folder", None)

    return sync


def dag_run(run_id: str) -> Any:
    import sqlalchemy as sa
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        run = session.scalar(sa.select(DagRun).where(DagRun.run_id == run_id))
        assert run is not None, f"no dag_run {run_id}"
        session.expunge(run)
        return run


def set_paused(dag_id: str, paused: bool) -> None:
    import sqlalchemy as sa
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    with create_session() as session:
        session.execute(sa.update(DagModel).where(DagModel.dag_id == dag_id).values(is_paused=paused))
