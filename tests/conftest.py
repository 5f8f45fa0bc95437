"""Shared fixtures. Airflow's environment is set here, before anything imports airflow."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

ROOT = Path(__file__).resolve().parents[1]
# A deliberate, optional test input from outside this repository: the definition fixture set kept
# beside the checkout (../shared/fixtures/definitions). When it is there, tests/compiler/test_fixtures.py
# runs its files too and checks that tests/fixtures/definitions holds a copy of each; without it those
# two checks skip (fail under CI=true) and the local copy alone keeps the suite standing.
SHARED_FIXTURES = ROOT.parent / "shared" / "fixtures" / "definitions"
LOCAL_FIXTURES = ROOT / "tests" / "fixtures" / "definitions"
DEMO_CATALOG = ROOT / "include" / "catalog" / "acme.yaml"
#: Every folder of example definitions in include/ (the demo applies them all).
EXAMPLE_FOLDERS = tuple(
    ROOT / "include" / name
    for name in (
        "templates",
        "rule-templates",
        "rules",
        "rules-using-templates",
        "reports",
        "workflows",
        "workflows-waiting",
    )
)
PG_ADMIN_URL = os.environ.get(
    "AUTOMATION_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)
_HOME_KEY = pytest.StashKey[Path]()
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def pytest_configure(config: pytest.Config) -> None:
    # One throwaway Airflow home per test process (each xdist worker too), never ~/airflow or the
    # dev .airflow/: concurrent runs in one checkout do not share SQLite files.
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    home = Path(tempfile.mkdtemp(prefix=f"rule-engine-tests-{worker}-"))
    config.stash[_HOME_KEY] = home
    os.environ["AIRFLOW_HOME"] = str(home)
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "dags")
    os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(ROOT / "plugins")
    os.environ.setdefault("AIRFLOW__API_AUTH__JWT_SECRET", "test-secret-" + "x" * 64)
    # One Fernet key for every process of the run (in-process Airflow, `airflow` subprocesses): trigger
    # rows (asset watchers) are stored encrypted and must decrypt in whichever process reads them.
    os.environ.setdefault("AIRFLOW__CORE__FERNET_KEY", "cnVsZS1lbmdpbmUtdGVzdHMtZmVybmV0LWtleS0zMmI=")
    os.environ["AUTOMATION_STORE_URL"] = f"sqlite:///{home / 'automation.db'}"
    os.environ["AUTOMATION_SNAPSHOT_PATH"] = str(home / "specs-snapshot.json")


def pytest_unconfigure(config: pytest.Config) -> None:
    home = config.stash.get(_HOME_KEY, None)
    if home is not None:
        shutil.rmtree(home, ignore_errors=True)


def _postgres_or_fail() -> None:
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(PG_ADMIN_URL)
        with engine.connect():
            pass
        engine.dispose()
    except Exception as exc:
        unavailable(f"Postgres is not reachable at {PG_ADMIN_URL}: {exc}")


def unavailable(message: str) -> NoReturn:
    """A test's real dependency is missing: fail under CI=true (never a silent skip there), else skip."""
    if IN_CI:
        pytest.fail(f"{message} (CI=true: a missing dependency fails the test instead of skipping it)")
    pytest.skip(message)


class PostgresDatabases:
    """Creates empty Postgres databases on loopback and drops them all at the end of the session."""

    def __init__(self) -> None:
        import sqlalchemy as sa

        self._admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        self._names: list[str] = []

    def create(self) -> str:
        import sqlalchemy as sa

        name = f"rule_engine_test_{uuid.uuid4().hex[:12]}"
        with self._admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        self._names.append(name)
        return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"

    def drop_all(self) -> None:
        import sqlalchemy as sa

        with self._admin.connect() as conn:
            for name in self._names:
                conn.execute(
                    sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                    {"n": name},
                )
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        self._admin.dispose()


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[PostgresDatabases]:
    """Factory of fresh Postgres databases (fails under CI=true when Postgres is down, else skips)."""
    _postgres_or_fail()
    databases = PostgresDatabases()
    try:
        yield databases
    finally:
        databases.drop_all()


@pytest.fixture
def postgres_url(postgres_databases: PostgresDatabases) -> str:
    """A fresh, empty Postgres database for one test."""
    return postgres_databases.create()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite database file for one test."""
    return f"sqlite:///{tmp_path / 'store.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using this runs twice: on a fresh SQLite file and on a fresh Postgres database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'db.sqlite'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def demo_catalog_dict() -> dict[str, object]:
    import yaml

    data: dict[str, object] = yaml.safe_load(DEMO_CATALOG.read_text())
    return data


@pytest.fixture
def one_deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Run while no other test of this session runs a whole Airflow deployment (a standalone with a
    browser, the Celery cluster): two at once on a 2-core machine starve each other, and a browser's
    mouse drags time out. An exclusive lock on a file beside the xdist workers' temporary folders;
    the other worker waits here, and all the other tests go on meanwhile."""
    import fcntl

    lock_path = tmp_path_factory.getbasetemp().parent / "one-deployment.lock"
    with lock_path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
