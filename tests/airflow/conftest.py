"""Airflow fixtures: a migrated metadata DB per worker, a demo app DB, a store with rules applied."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Collection, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from rule_compiler.catalog import Catalog
from rule_compiler.loading import expand_paths, read_definition_file
from rule_compiler.registration import Compiled, compile_document, register
from rule_compiler.store import RuleStore
from tests.airflow.notify_helpers import Inbox, running_smtp
from tests.conftest import DEMO_CATALOG, ROOT
from tests.demo_db import demo_db_module

DEMO_NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """`airflow db migrate` once per worker's AIRFLOW_HOME (dag.test needs the metadata tables)."""
    home = Path(os.environ["AIRFLOW_HOME"])
    marker = home / ".migrated-3.3.2"
    if not marker.exists():
        subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"],
            check=True,
            capture_output=True,
            env=os.environ.copy(),
        )
        marker.touch()


@pytest.fixture
def app_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> sa.Engine:
    """A fresh demo application database behind the Airflow connection `app_db`."""
    path = tmp_path / "demo_app.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    demo_db_module().create_demo_db(engine, DEMO_NOW)
    monkeypatch.setenv("AIRFLOW_CONN_APP_DB", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    return engine


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RuleStore]:
    """An upgraded rule store holding the demo catalog, used by the loader and by task code."""
    url = f"sqlite:///{tmp_path / 'automation.db'}"
    monkeypatch.setenv("AUTOMATION_STORE_URL", url)
    monkeypatch.setenv("AUTOMATION_SNAPSHOT_PATH", str(tmp_path / "snapshot.json"))
    rule_store = RuleStore(url)
    rule_store.upgrade()
    rule_store.put_catalog(
        organization="acme", catalog=yaml.safe_load(DEMO_CATALOG.read_text()), actor="test"
    )
    yield rule_store
    rule_store.close()


def apply_rules(
    store: RuleStore,
    *paths: Path,
    overrides: dict[str, Any] | None = None,
    members: Collection[str] | None = None,
) -> list[str]:
    """Register definitions as the CLI would (``members``: who approvals may assign); their dag ids."""
    catalog = Catalog.model_validate(store.get_catalog("acme"))
    dag_ids = []
    from tests.compiler.test_fixtures import fixture_templates

    templates = fixture_templates()  # the fixtures' condition templates, which `good/` rules use
    for path in expand_paths(list(paths)):
        compiled = compile_document(
            {**read_definition_file(path), **(overrides or {})}, catalog, templates=templates, members=members
        )
        register(store, compiled, actor="test")
        if isinstance(compiled, Compiled):  # condition templates are stored without a DAG
            dag_ids.append(compiled.spec.dag_id)
    return dag_ids


def dagbag() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


@pytest.fixture
def pg_app_db(postgres_databases: Any, monkeypatch: pytest.MonkeyPatch) -> sa.Engine:
    """The demo application database on the real Postgres, behind the Airflow connection `app_db`."""
    url = sa.make_url(postgres_databases.create())
    engine = sa.create_engine(url)
    demo_db_module().create_demo_db(engine, DEMO_NOW)
    connection = {
        "conn_type": "postgres",
        "host": url.host,
        "port": url.port,
        "login": url.username,
        "schema": url.database,
    }
    monkeypatch.setenv("AIRFLOW_CONN_APP_DB", json.dumps(connection))
    return engine


@pytest.fixture
def pg_store(postgres_databases: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RuleStore]:
    """An upgraded rule store on the real Postgres, holding the demo catalog."""
    url = postgres_databases.create()
    monkeypatch.setenv("AUTOMATION_STORE_URL", url)
    monkeypatch.setenv("AUTOMATION_SNAPSHOT_PATH", str(tmp_path / "snapshot.json"))
    rule_store = RuleStore(url)
    rule_store.upgrade()
    rule_store.put_catalog(
        organization="acme", catalog=yaml.safe_load(DEMO_CATALOG.read_text()), actor="test"
    )
    yield rule_store
    rule_store.close()


@pytest.fixture
def folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """The runs' working folders and the storage delivery's folder, per test."""
    paths = {"work": tmp_path / "report-runs", "storage": tmp_path / "reports"}
    monkeypatch.setenv("AUTOMATION_REPORTS_WORKDIR", str(paths["work"]))
    monkeypatch.setenv("AUTOMATION_REPORTS_STORAGE", str(paths["storage"]))
    return paths


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    with running_smtp(monkeypatch) as inbox:
        yield inbox
