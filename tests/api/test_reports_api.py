"""``/reports`` through the real app: CRUD with the weekly-sales report (its SQL inline), validation
errors at JSON paths, ETags, roles and organizations, next runs, the trigger, and the runs listing read
from the report execution log (rows written through ``rule_compiler.store.report_runs``)."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from rule_engine.api.schemas_reports import ReportRunStatus

from rule_compiler.loading import read_definition_file
from rule_compiler.runtime.report_delivery import delivery_key
from rule_compiler.store import RuleStore
from rule_compiler.store import report_runs as log
from rule_compiler.store.tables import REPORT_RUN_STATUSES
from tests.api.airflow_dags import dag_run, dag_syncer
from tests.api.conftest import Api, Recorder
from tests.conftest import ROOT

NAME = "weekly-sales"
DAG_ID = f"report__acme__{NAME}"
REPORT = f"acme/{NAME}"
SQL = (ROOT / "include" / "sql" / "reports" / "weekly_sales.sql").read_text()
WEEK_END = dt.datetime(2026, 11, 23, 6, 0, tzinfo=dt.UTC)


def report_body(**changes: Any) -> dict[str, Any]:
    """include/reports/weekly-sales.yaml as a JSON body: no organization, the daily query's SQL inline."""
    data = read_definition_file(ROOT / "include" / "reports" / f"{NAME}.yaml")
    data.pop("organization")
    daily = {k: v for k, v in data["queries"][0].items() if k != "sql_file"}
    data["queries"] = [{**daily, "sql": SQL}, *data["queries"][1:]]
    return {**data, **changes}


def create_report(api: Api, user: str = "ed", **changes: Any) -> Any:
    response = api.as_(user).post("/reports", json=report_body(**changes))
    assert response.status_code == 201, response.text
    return response


def _issues(response: Any) -> list[tuple[str, str]]:
    return sorted((e["path"], e["code"]) for e in response.json()["errors"])


def test_create_read_list_replace_patch_versions_and_spec(
    api: Api, store: RuleStore, recorder: Recorder
) -> None:
    created = create_report(api)
    body = created.json()
    assert (body["name"], body["organization"], body["dag_id"], body["version"]) == (NAME, "acme", DAG_ID, 1)
    assert (body["cron"], body["timezone"], body["active"]) == ("0 7 * * 1", "Europe/Berlin", True)
    assert body["formats"] == ["csv", "xlsx", "html", "pdf"] and body["updated_by"] == "ed"
    assert created.headers["ETag"] == body["etag"]
    assert created.headers["Location"].endswith(f"/api/v1/reports/{NAME}")
    stored = store.get(organization="acme", kind="report", name=NAME)
    assert stored.source == body["definition"] and stored.dag_id == DAG_ID and stored.active
    assert [(c.name, c.dag_id, c.active) for c in recorder.changes] == [(NAME, DAG_ID, True)]

    ed = api.as_("ed")
    create_report(api, name="daily-sales", active=False)
    listing = ed.get("/reports").json()
    assert [r["name"] for r in listing["items"]] == ["daily-sales", NAME] and listing["total"] == 2
    assert [r["name"] for r in ed.get("/reports", params={"sort": "-name"}).json()["items"]] == [
        NAME,
        "daily-sales",
    ]
    page = ed.get("/reports", params={"limit": 1}).json()
    assert [r["name"] for r in page["items"]] == ["daily-sales"] and page["has_more"] is True
    assert [r["name"] for r in ed.get("/reports", params={"active": True}).json()["items"]] == [NAME]
    assert [r["name"] for r in ed.get("/reports", params={"name_prefix": "we"}).json()["items"]] == [NAME]
    assert ed.get("/rules").json()["total"] == 0  # reports are not rules

    read = ed.get(f"/reports/{NAME}")
    assert read.status_code == 200 and read.json()["definition"] == body["definition"]
    replaced = ed.put(
        f"/reports/{NAME}",
        json=report_body(description="replaced", formats=["csv", "html"]),
        headers={"If-Match": read.headers["ETag"]},
    )
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["version"] == 2 and replaced.json()["formats"] == ["csv", "html"]
    patched = ed.patch(
        f"/reports/{NAME}",
        content=json.dumps({"description": None, "schedule": {"cron": "0 6 * * *"}}),
        headers={"If-Match": replaced.headers["ETag"], "Content-Type": "application/merge-patch+json"},
    )
    assert patched.status_code == 200, patched.text
    assert (patched.json()["version"], patched.json()["cron"]) == (3, "0 6 * * *")
    assert patched.json()["timezone"] == "Europe/Berlin"  # merged, not replaced
    assert store.get(organization="acme", kind="report", name=NAME).source["description"] == ""

    versions = ed.get(f"/reports/{NAME}/versions").json()
    assert [(v["version"], v["actor"]) for v in versions] == [(1, "ed"), (2, "ed"), (3, "ed")]
    diff = ed.get(f"/reports/{NAME}/versions/2/diff/3").json()
    assert sorted((c["path"], c["op"]) for c in diff["changes"]) == [
        ("description", "changed"),
        ("schedule.cron", "changed"),
    ]
    spec = ed.get(f"/reports/{NAME}/spec").json()
    assert (spec["dag_id"], spec["version"]) == (DAG_ID, 3)
    tasks = {task["task_id"]: task for task in spec["spec"]["tasks"]}
    assert set(tasks) == {"run_queries", "render_csv", "render_html", "deliver", "record_report"}
    assert tasks["run_queries"]["params"]["queries"][0]["sql"] == SQL
    audit = [(e.action, e.actor, e.version) for e in store.audit_entries(kind="report", name=NAME)]
    assert audit == [("update", "ed", 3), ("update", "ed", 2), ("create", "ed", 1)]
    assert len(recorder.changes) == 4  # two creates, two updates: each asks Airflow to re-parse


def test_a_report_using_an_sql_file_is_stored_with_the_file_text(api: Api) -> None:
    body = report_body()
    body["queries"][0] = {"id": "daily", "connection": "app_db", "sql_file": "weekly_sales.sql"}
    response = api.as_("ed").post("/reports", json=body)
    assert response.status_code == 201, response.text
    spec = api.as_("ed").get(f"/reports/{NAME}/spec").json()["spec"]
    [queries] = [t for t in spec["tasks"] if t["task_id"] == "run_queries"]
    assert queries["params"]["queries"][0]["sql"] == SQL


def test_validation_errors_carry_json_paths_and_store_nothing(api: Api, store: RuleStore) -> None:
    ed = api.as_("ed")
    good = ed.post("/reports/validate", json=report_body())
    assert good.status_code == 200, good.text
    assert good.json()["valid"] is True and good.json()["dag_id"] == DAG_ID
    bad = report_body()
    bad["queries"][1]["sql"] = "DELETE FROM orders"
    bad["charts"][0]["x"] = "weekday"
    dry = ed.post("/reports/validate", json=bad)
    assert dry.status_code == 200 and dry.json()["valid"] is False
    assert _issues(dry) == [("charts[0].x", "column"), ("queries[1].sql", "sql")]
    [column] = [e for e in dry.json()["errors"] if e["path"] == "charts[0].x"]
    assert "weekday" in column["message"] and "revenue" in column["message"]
    refused = ed.post("/reports", json=bad)
    assert refused.status_code == 422 and _issues(refused) == _issues(dry)

    structural = ed.post("/reports", json=report_body(formats=["docx"], surprise=1))
    assert structural.status_code == 422
    assert {path for path, _ in _issues(structural)} >= {"formats[0]", "surprise"}
    other_org = ed.post("/reports", json=report_body(organization="globex"))
    assert other_org.status_code == 422 and _issues(other_org) == [("organization", "organization")]
    a_rule = ed.post("/reports/validate", json=report_body(kind="rule")).json()
    assert a_rule["valid"] is False and [e["path"] for e in a_rule["errors"]] == ["kind"]
    assert store.list(kind="report") == []


def test_if_match_is_required_and_must_be_current(api: Api) -> None:
    etag = create_report(api).headers["ETag"]
    ed = api.as_("ed")
    path = f"/reports/{NAME}"
    assert ed.put(path, json=report_body()).status_code == 428
    stale = ed.put(path, json=report_body(description="x"), headers={"If-Match": '"stale"'})
    assert stale.status_code == 412 and stale.headers["ETag"] == etag
    assert ed.patch(path, json={"active": False}).status_code == 428
    assert ed.delete(path).status_code == 428
    changed = ed.patch(path, json={"active": False}, headers={"If-Match": etag})
    assert changed.status_code == 200 and changed.json()["active"] is False
    assert ed.patch(path, json={"active": True}, headers={"If-Match": etag}).status_code == 412
    renamed = ed.put(path, json=report_body(name="other"), headers={"If-Match": changed.headers["ETag"]})
    assert renamed.status_code == 422 and _issues(renamed) == [("name", "invalid")]
    assert ed.post("/reports", json=report_body()).status_code == 409  # the name is taken


def test_delete_is_soft_hard_delete_is_for_admins(api: Api, store: RuleStore, recorder: Recorder) -> None:
    etag = create_report(api).headers["ETag"]
    ed = api.as_("ed")
    assert ed.delete(f"/reports/{NAME}?hard=true", headers={"If-Match": etag}).status_code == 403
    assert ed.delete(f"/reports/{NAME}", headers={"If-Match": etag}).status_code == 204
    assert recorder.changes[-1].active is None and recorder.changes[-1].dag_id == DAG_ID
    assert ed.get(f"/reports/{NAME}").status_code == 404
    assert ed.get("/reports").json()["total"] == 0
    latest = store.audit_entries(kind="report")[0]
    assert (latest.action, latest.actor) == ("delete", "ed")
    revived = create_report(api)
    assert revived.json()["version"] == 2
    ada = api.as_("ada")
    gone = ada.delete(f"/reports/{NAME}?hard=true", headers={"If-Match": revived.headers["ETag"]})
    assert gone.status_code == 204
    assert store.list(kind="report", include_deleted=True) == []


def test_roles_organizations_and_anonymous(api: Api) -> None:
    etag = create_report(api).headers["ETag"]
    vera, gus, nobody = api.as_("vera"), api.as_("gus"), api.as_(None)
    path = f"/reports/{NAME}"
    headers = {"If-Match": etag}
    assert vera.get(path).status_code == 200
    assert vera.post("/reports/validate", json=report_body()).status_code == 200
    assert vera.post("/reports", json=report_body(name="mine")).status_code == 403
    assert vera.put(path, json=report_body(), headers=headers).status_code == 403
    assert vera.patch(path, json={"active": False}, headers=headers).status_code == 403
    assert vera.delete(path, headers=headers).status_code == 403
    assert vera.post(f"{path}/trigger").status_code == 403
    for method, sub in [
        ("GET", ""),
        ("PUT", ""),
        ("PATCH", ""),
        ("DELETE", "?hard=true"),
        ("GET", "/spec"),
        ("GET", "/versions"),
        ("GET", "/versions/1/diff/1"),
        ("GET", "/next-runs"),
        ("GET", "/runs"),
        ("POST", "/trigger"),
    ]:
        body = report_body() if method == "PUT" else ({"active": False} if method == "PATCH" else None)
        answer = gus.request(method, f"{path}{sub}", json=body, headers=headers)
        assert answer.status_code == 404, (method, sub, answer.text)
        assert nobody.request(method, f"{path}{sub}", json=body, headers=headers).status_code == 401
    assert gus.get("/reports").json()["items"] == []
    assert nobody.get("/reports").status_code == 401
    assert nobody.post("/reports", json=report_body()).status_code == 401
    assert api.as_("gina").post("/reports", json=report_body()).status_code == 201  # globex's own


def test_next_runs_follow_the_cron_in_its_time_zone(api: Api) -> None:
    create_report(api)
    answer = api.as_("vera").get(f"/reports/{NAME}/next-runs", params={"count": 3}).json()
    assert (answer["cron"], answer["timezone"]) == ("0 7 * * 1", "Europe/Berlin")
    runs = [dt.datetime.fromisoformat(r).astimezone(ZoneInfo("Europe/Berlin")) for r in answer["runs"]]
    assert len(runs) == 3 and runs == sorted(runs)
    assert all((r.weekday(), r.hour, r.minute) == (0, 7, 0) for r in runs)
    assert [(b - a).days for a, b in itertools.pairwise(runs)] == [7, 7]


def _logged_run(store: RuleStore, run_id: str, end: dt.datetime, report: str = REPORT) -> int:
    engine = store.engine
    organization, name = log.split_report_id(report)
    run_pk = log.start_report_run(
        engine,
        report_id=report,
        dag_id=f"report__{organization}__{name}",
        run_id=run_id,
        spec_hash="h" * 64,
        interval_start=end - dt.timedelta(days=7),
        interval_end=end,
        logical_date=end - dt.timedelta(days=7),
        parameters={"min_total": 0},
        now=end + dt.timedelta(minutes=1),
    )
    log.record_queries(
        engine,
        run_pk,
        queries={"daily": {"rows": 7, "truncated": False}, "top-customers": {"rows": 10, "truncated": True}},
        seconds=1.25,
    )
    log.record_file(engine, run_pk, "csv", file="daily.csv", size=321, seconds=0.1)
    return run_pk


def test_runs_list_the_execution_log_with_rows_files_and_deliveries(api: Api, store: RuleStore) -> None:
    create_report(api)
    engine = store.engine
    first = _logged_run(store, "scheduled__1", WEEK_END - dt.timedelta(days=7))
    log.finish_report_run(engine, first, "skipped-empty", now=WEEK_END)
    second = _logged_run(store, "scheduled__2", WEEK_END)
    key = delivery_key(REPORT, WEEK_END, 0)
    attempt = log.start_report_delivery(
        engine,
        key=key,
        report_id=REPORT,
        interval_end=WEEK_END,
        index=0,
        type="email",
        target="1 recipient",
        run_id="scheduled__2",
        now=WEEK_END,
    )
    assert attempt == 1
    log.finish_report_delivery(engine, key, status="sent", now=WEEK_END, detail={"message_id": "<m1>"})
    log.finish_report_run(engine, second, "success", now=WEEK_END)
    _logged_run(store, "scheduled__9", WEEK_END, report="globex/weekly-sales")  # another organization's

    vera = api.as_("vera")
    page = vera.get(f"/reports/{NAME}/runs")
    assert page.status_code == 200, page.text
    items = page.json()["items"]
    assert [(r["run_id"], r["status"]) for r in items] == [
        ("scheduled__2", "success"),
        ("scheduled__1", "skipped-empty"),
    ]
    latest = items[0]
    assert latest["queries"] == {
        "daily": {"rows": 7, "truncated": False},
        "top-customers": {"rows": 10, "truncated": True},
    }
    assert latest["files"] == {"csv": {"file": "daily.csv", "bytes": 321, "seconds": 0.1}}
    assert latest["dag_id"] == DAG_ID and latest["parameters"] == {"min_total": 0}
    [delivery] = latest["deliveries"]
    assert (delivery["index"], delivery["type"], delivery["status"], delivery["attempts"]) == (
        0,
        "email",
        "sent",
        1,
    )
    assert delivery["detail"] == {"message_id": "<m1>"} and delivery["sent_at"] is not None
    assert items[1]["deliveries"] == []

    only = vera.get(f"/reports/{NAME}/runs", params={"status": "skipped-empty"}).json()["items"]
    assert [r["run_id"] for r in only] == ["scheduled__1"]
    one = vera.get(f"/reports/{NAME}/runs", params={"limit": 1}).json()
    assert [r["run_id"] for r in one["items"]] == ["scheduled__2"] and one["has_more"] is True
    rest = vera.get(f"/reports/{NAME}/runs", params={"limit": 1, "offset": 1}).json()
    assert [r["run_id"] for r in rest["items"]] == ["scheduled__1"] and rest["has_more"] is False
    assert vera.get(f"/reports/{NAME}/runs", params={"status": "exploded"}).status_code == 422
    assert api.as_("gus").get(f"/reports/{NAME}/runs").status_code == 404
    assert vera.get("/reports/nothing-here/runs").status_code == 404


def test_the_documented_run_statuses_are_the_stored_ones() -> None:
    assert tuple(ReportRunStatus.__args__) == REPORT_RUN_STATUSES


def test_trigger_checks_the_report_state_and_its_parameters(api: Api) -> None:
    etag = create_report(api).headers["ETag"]
    ed = api.as_("ed")
    path = f"/reports/{NAME}/trigger"
    for payload, where in [
        ({"max_total": 5}, "payload.max_total"),
        ({"min_total": "lots"}, "payload.min_total"),
        ({"data_interval_end": "2026-01-01"}, "payload.data_interval_end"),
    ]:
        refused = ed.post(path, json={"payload": payload})
        assert refused.status_code == 422, refused.text
        assert [e["path"] for e in refused.json()["errors"]] == [where]
    not_loaded = ed.post(path, json={"payload": {"min_total": 10}})
    assert not_loaded.status_code == 409 and not_loaded.headers["Retry-After"] == "30"
    ed.patch(f"/reports/{NAME}", json={"active": False}, headers={"If-Match": etag})
    inactive = ed.post(path)
    assert inactive.status_code == 409 and "inactive" in inactive.json()["detail"]


@pytest.mark.airflow
def test_trigger_starts_an_airflow_run_with_the_overrides_as_conf(
    api: Api, store: RuleStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    sync: Callable[[], None] = dag_syncer(store, monkeypatch, tmp_path)
    create_report(api)
    sync()
    response = api.as_("ed").post(
        f"/reports/{NAME}/trigger", json={"payload": {"min_total": 500}, "note": "big orders only"}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["report"], body["dag_id"], body["version"], body["triggered_by"]) == (NAME, DAG_ID, 1, "ed")
    assert body["conf"] == {"min_total": 500}
    run = dag_run(body["run_id"])
    assert run.dag_id == DAG_ID and run.conf == {"min_total": 500} and run.triggering_user_name == "ed"
    [audit] = store.audit_entries(organization="acme", kind="report_run")
    assert (audit.action, audit.actor, audit.name) == ("create", "ed", NAME)
    assert audit.detail["run_id"] == body["run_id"]
