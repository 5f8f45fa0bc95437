"""Where a storage delivery may write, decided at registration (deny by default): the admin's default
folder when it names neither `location` nor `connection`; otherwise a storage connection of the
organization's catalog and a location under one of that connection's `locations`. A location no
worker can write to is refused too, at `deliver[n].location`, saying what to write. (The run-time
side, a bucket and a local folder written end to end: tests/airflow/test_report_storage_and_cleanup.py.)"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from rule_compiler.canonical import content_hash
from rule_compiler.catalog import Catalog, Connection
from rule_compiler.errors import RuleValidationError
from rule_compiler.registration import Compiled, compile_document
from rule_compiler.storage_locations import STORAGE_PROVIDERS, is_under, storage_location_problem
from tests.conftest import DEMO_CATALOG

#: The storage connections the tests add to the demo catalog.
STORAGE_CONNECTIONS = {
    "reports_bucket": {
        "kind": "storage",
        "locations": [
            "s3://reports-bucket/acme",
            "s3a://reports-bucket/",
            "gs://reports-bucket/acme/",
            "gcs://reports-bucket/acme",
            "abfs://container/acme",
            "abfss://container/acme",
            "adl://store/acme",
            "file:///srv/reports/acme/",
        ],
    },
    "archive": {"kind": "storage", "locations": ["s3://acme-archive/reports/"]},
}


def _catalog(connections: dict[str, Any] | None = None) -> Catalog:
    data = yaml.safe_load(DEMO_CATALOG.read_text())
    data["connections"].update(STORAGE_CONNECTIONS if connections is None else connections)
    return Catalog.model_validate(data)


def _report(delivery: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": "report",
        "name": "stored",
        "organization": "acme",
        "schedule": {"cron": "0 7 * * 1"},
        "queries": [{"id": "q", "connection": "app_db", "sql": "SELECT id, total FROM orders"}],
        "formats": ["csv"],
        "deliver": [delivery],
    }


def _compile(delivery: dict[str, Any], catalog: Catalog | None = None) -> Compiled | list[tuple[str, str]]:
    try:
        compiled = compile_document(_report(delivery), catalog or _catalog())
    except RuleValidationError as exc:
        return [(issue.path, issue.message) for issue in exc.issues]
    assert isinstance(compiled, Compiled)
    return compiled


def _issues(delivery: dict[str, Any], catalog: Catalog | None = None) -> list[tuple[str, str]]:
    result = _compile(delivery, catalog)
    return [] if isinstance(result, Compiled) else result


# -- the location URL ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "location",
    [
        "s3://reports-bucket/acme",
        "s3a://reports-bucket",
        "gs://reports-bucket/acme/weekly",
        "gcs://reports-bucket/acme",
        "abfs://container/acme",
        "abfss://container/acme",
        "adl://store/acme",
        "file:///srv/reports/acme",
    ],
)
def test_a_location_airflow_can_write_to_is_accepted_under_its_storage_connection(location: str) -> None:
    assert storage_location_problem(location) is None
    compiled = _compile({"type": "storage", "location": location, "connection": "reports_bucket"})
    assert isinstance(compiled, Compiled), compiled
    deliver = next(task for task in compiled.spec.tasks if task.task_id == "deliver")
    deliveries: Any = deliver.params["deliveries"]
    delivery = deliveries[0]
    assert (delivery["location"], delivery["connection"]) == (location, "reports_bucket")


@pytest.mark.parametrize(
    ("location", "words"),
    [
        ("memory://reports", "'memory://' is not a storage scheme Airflow can write to"),
        ("ftp://files.example/reports", "'ftp://' is not a storage scheme"),
        ("az://container/acme", "'az://' is not a storage scheme"),  # adlfs has it; Airflow does not
        ("reports-bucket/acme", "give a URL such as s3://bucket/reports"),
        ("s3://", "name the bucket: s3://bucket/folder"),
        ("s3:///acme", "name the bucket"),
        ("s3://aws_reports@reports-bucket/acme", "name the Airflow connection in `connection`"),
        ("file://reports", "give an absolute folder: file:///srv/reports"),
        ("file://", "give an absolute folder"),
        ("file:///", "give an absolute folder"),
        # spellings of a folder that a prefix comparison would not see through
        ("file:///srv/reports/acme/../../../etc", "may not contain empty, '.' or '..' folders"),
        ("s3://reports-bucket/acme/./x", "may not contain empty, '.' or '..' folders"),
        ("file:////etc", "may not contain empty, '.' or '..' folders"),  # ObjectStoragePath: ./etc
        ("s3://reports-bucket/acme//x", "may not contain empty"),
        ("s3://reports-bucket/acme/%2e%2e/x", "'%' may not appear in a location"),
        ("file:///srv/reports/acme?x=1", "'?' may not appear"),
        ("file:///srv/reports/acme#x", "'#' may not appear"),
        ("file:///srv/reports/acme\\..\\x", "'\\\\' may not appear"),
        ("s3://reports-bucket/acme x", "' ' may not appear"),
        ("s3://reports-bucket:443/acme", "':' may not appear"),
    ],
)
def test_a_location_no_worker_can_write_to_is_refused_at_its_path(location: str, words: str) -> None:
    assert words in (storage_location_problem(location) or "")
    issues = _issues({"type": "storage", "location": location, "connection": "reports_bucket"})
    assert [path for path, _ in issues] == ["deliver[0].location"]
    assert words in issues[0][1]


def test_the_refusal_lists_the_schemes_and_each_bucket_scheme_names_its_provider() -> None:
    message = storage_location_problem("memory://reports") or ""
    assert all(scheme in message for scheme in STORAGE_PROVIDERS)
    assert STORAGE_PROVIDERS["file"] is None
    assert STORAGE_PROVIDERS["s3"] == "apache-airflow-providers-amazon[s3fs]"
    assert STORAGE_PROVIDERS["gs"] == "apache-airflow-providers-google"
    assert STORAGE_PROVIDERS["abfs"] == "apache-airflow-providers-microsoft-azure"


# -- deny by default: the catalog decides ----------------------------------------------------------


def test_without_a_location_or_connection_the_default_folder_is_used_and_the_path_may_not_climb() -> None:
    assert _issues({"type": "storage"}) == []
    assert _issues({"type": "storage"}, _catalog({})) == []  # no storage connection needed for it
    issues = _issues({"type": "storage", "path": "weekly/../../other-org"})
    assert issues == [("deliver[0].path", "the folder may not climb out of the location ('..')")]


@pytest.mark.parametrize(
    "location",
    [
        "s3://reports-bucket/acme",
        "s3://reports-bucket/acme/",
        "s3://reports-bucket/acme/weekly/sales",
        "s3a://reports-bucket/anything",
        "gs://reports-bucket/acme/x",
        "file:///srv/reports/acme",
        "file:///srv/reports/acme/weekly",
    ],
)
def test_a_location_under_one_of_the_connections_locations_is_accepted(location: str) -> None:
    assert _issues({"type": "storage", "location": location, "connection": "reports_bucket"}) == []


@pytest.mark.parametrize(
    "location",
    [
        "s3://someone-elses-bucket/reports",
        "s3://reports-bucket-evil/acme",  # starts with the bucket's name, is another bucket
        "s3://reports-bucket/acme-evil",  # starts with the folder's name, is another folder
        "s3://reports-bucket",  # above the allowed folder
        "s3://reports-bucket/other-org/acme",
        "gs://reports-bucket/other",
        "s3://acme-archive/reports",  # another storage connection's location
        "file:///etc",
        "file:///srv/reports",
        "file:///srv/reports/other-org",
        "file:///srv/reports/acme-evil",
    ],
)
def test_a_location_outside_the_connections_locations_is_refused_naming_the_allowed_ones(
    location: str,
) -> None:
    issues = _issues({"type": "storage", "location": location, "connection": "reports_bucket"})
    assert [path for path, _ in issues] == ["deliver[0].location"], issues
    message = issues[0][1]
    assert message.startswith("connection 'reports_bucket' may write only under s3://reports-bucket/acme/, ")
    assert "file:///srv/reports/acme/" in message
    assert "add its prefix to the connection's `locations` in the catalog" in message


def test_a_location_without_a_connection_is_refused_naming_the_storage_connections() -> None:
    issues = _issues({"type": "storage", "location": "file:///etc"})
    assert [path for path, _ in issues] == ["deliver[0].connection"]
    message = issues[0][1]
    assert message.startswith("a storage `location` needs `connection`: a storage connection")
    assert "'archive' (s3://acme-archive/reports/); 'reports_bucket' (s3://reports-bucket/acme, " in message

    # an organization without storage connections is told how to get one
    issues = _issues({"type": "storage", "location": "s3://acme-reports/x"}, _catalog({}))
    assert [path for path, _ in issues] == ["deliver[0].connection"]
    assert "it has none: a platform administrator adds a connection of kind storage" in issues[0][1]


def test_a_location_without_a_connection_that_no_worker_can_use_gets_both_problems() -> None:
    issues = _issues({"type": "storage", "location": "memory://reports"})
    assert [path for path, _ in issues] == ["deliver[0].connection", "deliver[0].location"]


def test_the_connection_must_be_a_storage_connection_of_the_catalog() -> None:
    unknown = _issues({"type": "storage", "location": "s3://b/acme", "connection": "aws_other_org"})
    assert [path for path, _ in unknown] == ["deliver[0].connection"]
    assert "connection 'aws_other_org' is not in the catalog of organization 'acme'" in unknown[0][1]

    database = _issues({"type": "storage", "location": "s3://b/acme", "connection": "app_db"})
    assert database == [
        (
            "deliver[0].connection",
            "connection 'app_db' is a database connection; this needs a storage connection",
        )
    ]


def test_a_connection_without_a_location_is_refused_saying_which_location_to_add() -> None:
    issues = _issues({"type": "storage", "connection": "archive"})
    assert issues == [
        (
            "deliver[0].location",
            "say where to write with connection 'archive': add `location: s3://acme-archive/reports/` "
            "(or a folder under any of s3://acme-archive/reports/)",
        )
    ]


# -- the catalog's storage connections -------------------------------------------------------------


def test_a_storage_connection_lists_at_least_one_valid_location() -> None:
    with pytest.raises(ValidationError, match="a storage connection lists the places reports may be"):
        Connection.model_validate({"kind": "storage"})
    with pytest.raises(ValidationError) as caught:
        Connection.model_validate({"kind": "storage", "locations": ["s3://ok/x", "file:///srv/../etc"]})
    (error,) = caught.value.errors()
    assert error["loc"] == ("locations", 1)
    assert "may not contain empty, '.' or '..' folders" in error["msg"]
    with pytest.raises(ValidationError, match="'ftp://' is not a storage scheme"):
        Connection.model_validate({"kind": "storage", "locations": ["ftp://files/x"]})


def test_only_a_storage_connection_has_locations_and_it_has_no_tables() -> None:
    for kind in ("database", "http", "smtp", "slack"):
        with pytest.raises(ValidationError, match=f"a {kind} connection has no `locations`"):
            Connection.model_validate({"kind": kind, "locations": ["s3://b/x"]})
    table = {"orders": {"columns": {"id": {"type": "integer"}}}}
    with pytest.raises(ValidationError, match="a storage connection has no tables"):
        Connection.model_validate({"kind": "storage", "locations": ["s3://b/x"], "tables": table})
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        Connection.model_validate({"kind": "storage", "locations": ["s3://b/x"], "bucket": "b"})


def test_catalogs_without_storage_connections_dump_and_hash_as_before() -> None:
    raw = yaml.safe_load(DEMO_CATALOG.read_text())
    dumped = Catalog.model_validate(raw).model_dump(mode="json")
    assert all("locations" not in connection for connection in dumped["connections"].values())
    assert content_hash(Catalog.model_validate(dumped).model_dump(mode="json")) == content_hash(dumped)
    stored = _catalog().model_dump(mode="json")["connections"]["archive"]
    assert stored == {"kind": "storage", "tables": {}, "locations": ["s3://acme-archive/reports/"]}


@pytest.mark.parametrize(
    ("location", "allowed", "under"),
    [
        ("s3://acme-reports/x", "s3://acme-reports/", True),
        ("s3://acme-reports", "s3://acme-reports/", True),
        ("s3://acme-reports/", "s3://acme-reports", True),
        ("s3://acme-reports-evil/x", "s3://acme-reports/", False),
        ("s3://acme-reports-evil/x", "s3://acme-reports", False),
        ("s3a://acme-reports/x", "s3://acme-reports/", False),  # another scheme is another place
        ("file:///srv/reports/acme", "file:///srv/reports/acme/", True),
        ("file:///srv/reports/acme2", "file:///srv/reports/acme", False),
        ("file:///srv/reports", "file:///srv/reports/acme", False),
    ],
)
def test_is_under_compares_whole_folders(location: str, allowed: str, under: bool) -> None:
    assert is_under(location, allowed) is under
