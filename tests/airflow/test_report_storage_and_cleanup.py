"""Real `dag.test()` runs of report DAGs: the storage delivery into a bucket through Airflow's
ObjectStoragePath and the scheme's provider, and into a local folder of a catalog storage connection
(opened without an Airflow connection); a bucket scheme without its provider; a spec whose location
was never checked against the catalog, refused at run time; a chart naming a column the query does
not return, found at run time; the sweep of old run folders.

No network: the bucket is fsspec's in-memory filesystem, served for ``s3://`` by a stand-in for
``apache-airflow-providers-amazon`` (a ``get_fs(conn_id, storage_options)`` registered for the
scheme, which is what installing the provider does)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from rule_compiler.compiler.report import DELIVER_TASK
from rule_compiler.registration import Compiled, register
from rule_compiler.reporting.workdir import RETENTION_ENV, run_workdir
from rule_compiler.store import RuleStore
from rule_compiler.store import report_runs as log
from tests.airflow.conftest import apply_rules, dagbag
from tests.airflow.report_support import (
    EMPTY_WEEK_RUN,
    WEEK_END,
    WEEK_RUN,
    WEEKLY,
    WEEKLY_ID,
    apply_report,
    task_states,
    task_xcom,
    weekly_document,
)
from tests.conftest import DEMO_CATALOG, ROOT

pytestmark = [pytest.mark.airflow, pytest.mark.usefixtures("airflow_db")]

PATH = "weekly-sales/{{ run.interval_end }}"
BUCKET = {
    "type": "storage",
    "location": "s3://reports-bucket/acme",
    "connection": "aws_reports",
    "path": PATH,
}
LOCAL = {"type": "storage", "path": PATH}
DAY = 86_400.0


@pytest.fixture
def storage_catalog(store: RuleStore, tmp_path: Path) -> Path:
    """The demo catalog plus the storage connections these tests write through; the local folder
    ``local_reports`` may write under is returned."""
    shared = tmp_path / "shared-reports" / "acme"
    catalog = yaml.safe_load(DEMO_CATALOG.read_text())
    catalog["connections"].update(
        {
            "aws_reports": {"kind": "storage", "locations": ["s3://reports-bucket/acme/"]},
            "google_reports": {"kind": "storage", "locations": ["gs://reports-bucket/acme/"]},
            "local_reports": {"kind": "storage", "locations": [shared.as_uri()]},
        }
    )
    store.put_catalog(organization="acme", catalog=catalog, actor="test")
    return shared


@dataclass
class Bucket:
    """The in-memory bucket: what was written (path → bytes), how often each path was opened for
    writing, and the connection ids the provider was asked for."""

    fs: Any
    writes: Counter[str] = field(default_factory=Counter)
    connections: list[str | None] = field(default_factory=list)

    def files(self, prefix: str) -> dict[str, bytes]:
        root = prefix.rstrip("/") + "/"
        return {path[len(root) :]: self.fs.cat_file(path) for path in self.fs.find(root)}


@pytest.fixture
def s3_bucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[Bucket]:
    from airflow.sdk.io import store as object_stores
    from airflow.sdk.io.fs import _register_filesystems
    from fsspec.implementations.memory import MemoryFileSystem  # type: ignore[import-untyped]

    writes: Counter[str] = Counter()

    class BucketFileSystem(MemoryFileSystem):  # type: ignore[misc]
        store: dict[str, Any] = {}  # this test's own objects: MemoryFileSystem keeps them per class
        pseudo_dirs = [""]

        def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
            if "w" in mode:
                writes[self._strip_protocol(path)] += 1
            return super()._open(path, mode, **kwargs)

    bucket = Bucket(fs=BucketFileSystem(skip_instance_cache=True), writes=writes)

    def get_fs(conn_id: str | None, storage_options: dict[str, Any] | None = None) -> Any:
        bucket.connections.append(conn_id)
        return bucket.fs

    def forget_s3_stores() -> None:  # Airflow caches each (scheme, connection) store per process
        for alias in [a for a in object_stores._STORE_CACHE if a == "s3" or a.startswith("s3-")]:
            del object_stores._STORE_CACHE[alias]

    forget_s3_stores()
    monkeypatch.setitem(_register_filesystems(), "s3", get_fs)  # as the amazon provider registers it
    yield bucket
    forget_s3_stores()


def _document(*deliveries: dict[str, Any]) -> dict[str, Any]:
    return {**weekly_document(), "formats": ["csv", "html"], "deliver": list(deliveries)}


def _replace_deliver_task(store: RuleStore, compiled: Compiled, first_delivery: dict[str, Any]) -> None:
    """Register ``compiled`` with its first delivery replaced (as no validation would let it be) and
    2 retries a second apart for the deliver task."""
    deliver = next(task for task in compiled.spec.tasks if task.task_id == DELIVER_TASK)
    compiled_deliveries: Any = deliver.params["deliveries"]
    deliveries = [first_delivery, *compiled_deliveries[1:]]
    edited = deliver.model_copy(
        update={
            "params": {**deliver.params, "deliveries": deliveries},
            "retries": 2,
            "retry_delay_seconds": 1,
        }
    )
    tasks = tuple(edited if task.task_id == DELIVER_TASK else task for task in compiled.spec.tasks)
    spec = compiled.spec.model_copy(update={"tasks": tasks})
    register(
        store,
        dataclasses.replace(compiled, spec=spec, spec_json=spec.to_json(), spec_hash=spec.spec_hash),
        actor="test",
    )


def _local_files(folders: dict[str, Path]) -> dict[str, bytes]:
    root = folders["storage"]
    return {str(path.relative_to(root)): path.read_bytes() for path in root.rglob("*") if path.is_file()}


@pytest.mark.usefixtures("storage_catalog")
def test_storage_writes_the_files_into_a_bucket_through_its_provider_once_per_interval(
    store: RuleStore, app_db: sa.Engine, folders: dict[str, Path], s3_bucket: Bucket
) -> None:
    apply_report(store, _document(BUCKET, LOCAL))

    dag_run = dagbag().dags[WEEKLY].test(logical_date=WEEK_RUN)

    states = task_states(dag_run)
    assert str(dag_run.state) == "success", states
    assert states["deliver[0]"] == states["deliver[1]"] == "success"
    local = _local_files(folders)  # the default storage: under the organization's own folder
    assert len(local) == 2 and all(name.startswith("acme/weekly-sales/2026-11-23T06-00-00") for name in local)
    # the bucket holds the same files, byte for byte, under the location's prefix (no org folder:
    # the location is the organization's own, from its catalog)
    assert s3_bucket.files("/reports-bucket/acme") == {
        name.removeprefix("acme/"): content for name, content in local.items()
    }
    assert set(s3_bucket.writes.values()) == {1} and len(s3_bucket.writes) == len(local)
    assert set(s3_bucket.connections) == {"aws_reports"}  # the provider got the delivery's connection
    bucket_delivery, local_delivery = log.deliveries_of(store.engine, WEEKLY_ID, WEEK_END)
    assert (bucket_delivery.status, bucket_delivery.attempts) == ("sent", 1)
    assert bucket_delivery.target == f"s3://reports-bucket/acme {PATH}"
    assert bucket_delivery.detail is not None
    folder = str(bucket_delivery.detail["folder"])  # ObjectStoragePath names its connection as user
    assert folder.startswith("s3://aws_reports@reports-bucket/acme/weekly-sales/2026-11-23T06-00-00")
    assert sorted(bucket_delivery.detail["files"]) == sorted(Path(name).name for name in local)
    assert (local_delivery.status, local_delivery.attempts) == ("sent", 1)

    # a second run of the same interval writes nothing again, to the bucket or the folder
    again = dagbag().dags[WEEKLY].test(logical_date=WEEK_RUN + dt.timedelta(hours=3))
    assert str(again.state) == "success", task_states(again)
    assert again.data_interval_end == WEEK_END
    assert (
        task_xcom(again, "deliver", 0)["status"] == task_xcom(again, "deliver", 1)["status"] == "already_sent"
    )
    assert set(s3_bucket.writes.values()) == {1} and len(s3_bucket.writes) == len(local)
    assert [d.attempts for d in log.deliveries_of(store.engine, WEEKLY_ID, WEEK_END)] == [1, 1]


@pytest.mark.usefixtures("storage_catalog")
def test_a_bucket_whose_provider_is_not_installed_fails_at_once_saying_which_to_install(
    store: RuleStore, app_db: sa.Engine, folders: dict[str, Path]
) -> None:
    """gs:// passes registration (Airflow's google provider serves it), but this worker has no such
    provider: the delivery fails for good on its first attempt, is recorded, and the others go out."""
    gcs = {**BUCKET, "location": "gs://reports-bucket/acme", "connection": "google_reports"}
    apply_report(store, _document(gcs, LOCAL), retries=2, retry_delay_seconds=1)

    dag_run = dagbag().dags[WEEKLY].test(logical_date=WEEK_RUN)

    states = task_states(dag_run)
    assert states["deliver[0]"] == "failed" and states["deliver[1]"] == "success", states
    assert states["record_report"] == "failed" and str(dag_run.state) == "failed"
    failed, sent = log.deliveries_of(store.engine, WEEKLY_ID, WEEK_END)
    assert (failed.status, failed.attempts) == ("failed", 1)  # permanent: not retried
    assert failed.error == (
        "PermanentActionError: no Airflow filesystem serves 'gs://' on this worker; "
        "install apache-airflow-providers-google on the workers"
    )
    assert (sent.status, sent.attempts) == ("sent", 1) and len(_local_files(folders)) == 2
    run = log.get_report_run(store.engine, dag_id=WEEKLY, run_id=dag_run.run_id)
    assert run is not None and run.status == "partial"
    assert "delivery 0 (storage) failed: PermanentActionError: no Airflow filesystem" in (run.error or "")


def test_a_local_folder_of_a_storage_connection_is_written_without_an_airflow_connection(
    store: RuleStore, app_db: sa.Engine, folders: dict[str, Path], storage_catalog: Path
) -> None:
    """``local_reports`` is only the catalog's name for the folder: no Airflow connection of that
    name exists, and the folder is opened without one."""
    location = f"{storage_catalog.as_uri()}/weekly"
    apply_report(store, _document({"type": "storage", "location": location, "connection": "local_reports"}))

    dag_run = dagbag().dags[WEEKLY].test(logical_date=WEEK_RUN)

    assert str(dag_run.state) == "success", task_states(dag_run)
    written = sorted(
        path.relative_to(storage_catalog) for path in storage_catalog.rglob("*") if path.is_file()
    )
    assert [path.parent.as_posix() for path in written] == [
        "weekly/weekly-sales/2026-11-23T06-00-00+00-00"
    ] * 2
    (delivery,) = log.deliveries_of(store.engine, WEEKLY_ID, WEEK_END)
    assert delivery.detail is not None
    assert delivery.detail["folder"] == f"{location}/weekly-sales/2026-11-23T06-00-00+00-00"  # no conn@
    assert _local_files(folders) == {}  # not the default folder


def test_a_location_never_checked_against_the_catalog_is_refused_at_run_time(
    store: RuleStore, app_db: sa.Engine, folders: dict[str, Path], storage_catalog: Path, tmp_path: Path
) -> None:
    """A spec compiled before storage connections existed (here: the connection taken out of a
    compiled spec) names a location and no connection: the delivery fails at once, writes nothing
    there, and the other delivery still goes out."""
    elsewhere = tmp_path / "other-org"
    checked = {"type": "storage", "location": storage_catalog.as_uri(), "connection": "local_reports"}
    compiled = apply_report(store, _document({**checked, "path": PATH}, LOCAL))
    unchecked = {"index": 0, "type": "storage", "location": elsewhere.as_uri(), "path": PATH}
    _replace_deliver_task(store, compiled, unchecked)

    dag_run = dagbag().dags[WEEKLY].test(logical_date=WEEK_RUN)

    states = task_states(dag_run)
    assert states["deliver[0]"] == "failed" and states["deliver[1]"] == "success", states
    refused, sent = log.deliveries_of(store.engine, WEEKLY_ID, WEEK_END)
    assert (refused.status, refused.attempts) == ("failed", 1)  # permanent: not retried
    assert refused.error == (
        f"PermanentActionError: the storage location '{elsewhere.as_uri()}' cannot be used: it names "
        "no storage connection of the catalog; register the report again to have it checked against "
        "the catalog"
    )
    assert not elsewhere.exists()
    assert sent.status == "sent" and len(_local_files(folders)) == 2


def test_a_chart_column_the_query_does_not_return_fails_the_render_with_a_clear_error(
    store: RuleStore, app_db: sa.Engine, folders: dict[str, Path]
) -> None:
    """`SELECT *` over a CTE: registration cannot know the columns, so the render task finds out."""
    sql = (
        "WITH per_day AS (SELECT DATE(created_at) AS day, SUM(total) AS revenue FROM orders "
        "WHERE created_at >= :data_interval_start AND created_at < :data_interval_end "
        "GROUP BY DATE(created_at)) SELECT * FROM per_day ORDER BY day"
    )
    document = {
        **_document(LOCAL),
        "parameters": [],
        "queries": [{"id": "daily", "connection": "app_db", "sql": sql}],
        "charts": [{"id": "profit", "query": "daily", "type": "bar", "x": "day", "y": ["profit"]}],
    }
    apply_report(store, document)

    dag_run = dagbag().dags[WEEKLY].test(logical_date=WEEK_RUN)

    states = task_states(dag_run)
    assert states["run_queries"] == "success" and states["render_csv"] == "success", states
    assert states["render_html"] == "failed" and states["record_report"] == "failed"
    assert all(state == "upstream_failed" for name, state in states.items() if name.startswith("deliver"))
    run = log.get_report_run(store.engine, dag_id=WEEKLY, run_id=dag_run.run_id)
    assert run is not None and run.status == "error"
    assert (
        "render_html: ReportRenderError: chart 'profit' uses column 'profit', but query 'daily' "
        "returned day, revenue; fix the chart's x/y or the query's SELECT list"
    ) in (run.error or "")
    assert run.error is not None
    assert "render_html made no file" in run.error and "delivery 0 was not attempted" in run.error
    assert log.deliveries_of(store.engine, WEEKLY_ID, WEEK_END) == [] and _local_files(folders) == {}


def _aged_folder(base: Path, dag_id: str, run_id: str, age_days: float) -> Path:
    folder = run_workdir(base, dag_id, run_id)
    (folder / "daily.csv").write_text("day,orders,revenue\n", encoding="utf-8")
    moment = time.time() - age_days * DAY
    for path in (folder / "daily.csv", folder):
        os.utime(path, (moment, moment))
    return folder


def test_record_report_removes_the_reports_run_folders_older_than_the_retention(
    store: RuleStore, app_db: sa.Engine, folders: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(RETENTION_ENV, raising=False)  # the default: 7 days
    apply_rules(store, ROOT / "include" / "reports" / "weekly-sales.yaml")
    work = folders["work"]
    old = _aged_folder(work, WEEKLY, "scheduled__2026-05-04T05:00:00+00:00", 30)
    recent = _aged_folder(work, WEEKLY, "scheduled__2026-06-01T05:00:00+00:00", 3)
    other_report = _aged_folder(work, "report__acme__other", "scheduled__2026-05-04T05:00:00+00:00", 30)

    dag_run = dagbag().dags[WEEKLY].test(logical_date=EMPTY_WEEK_RUN)  # skip_if_empty: a short run

    states = task_states(dag_run)
    assert str(dag_run.state) == "success" and states["record_report"] == "success", states
    assert not old.exists()
    assert recent.is_dir() and (recent / "daily.csv").is_file()
    assert other_report.is_dir()  # another report's folders are swept by its own runs
    current = run_workdir(work, WEEKLY, dag_run.run_id)
    assert {path.name for path in current.iterdir()} >= {"manifest.json", "daily.csv"}

    # a retention that is not a duration is logged; the run is not failed for it and nothing goes
    monkeypatch.setenv(RETENTION_ENV, "a week")
    older = _aged_folder(work, WEEKLY, "scheduled__2026-05-11T05:00:00+00:00", 30)
    later = dagbag().dags[WEEKLY].test(logical_date=EMPTY_WEEK_RUN + dt.timedelta(days=7))
    assert str(later.state) == "success" and task_states(later)["record_report"] == "success"
    assert older.is_dir() and current.is_dir()

    # a shorter retention, set by the operator, takes the older run's folder too
    monkeypatch.setenv(RETENTION_ENV, "2d")
    last = dagbag().dags[WEEKLY].test(logical_date=EMPTY_WEEK_RUN + dt.timedelta(days=14))
    assert str(last.state) == "success", task_states(last)
    assert not older.exists() and not recent.exists()
    assert current.is_dir() and run_workdir(work, WEEKLY, last.run_id).is_dir()
