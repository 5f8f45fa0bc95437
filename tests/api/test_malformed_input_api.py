"""Malformed input through the real app (issue 13, part 5): answered 422 with its JSON path, never a
5xx, never stored. NUL and control characters in the path and the query, with the store on Postgres
(whose text refuses NUL: the store's error used to be a 5xx); JSON bodies with NaN, Infinity, 1e400,
NUL or lone surrogates, or nested thousands deep; crons that never fire (and the next runs of one
stored before); membership usernames; webhook URLs the send-time guard would always refuse."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from rule_compiler.canonical import content_hash
from rule_compiler.compiler import COMPILER_VERSION
from rule_compiler.errors import NotFoundError
from rule_compiler.loading import MAX_NESTING_DEPTH
from rule_compiler.store import DefinitionWrite, RuleStore
from tests.api.conftest import MEMBERS, Api, catalog_for, create, rule_body
from tests.api.test_reports_api import report_body

JSON = {"Content-Type": "application/json"}


def _errors(response: Any) -> list[tuple[str, str]]:
    return [(e["path"], e["code"]) for e in response.json()["errors"]]


def _raw(body: Any, *replacements: tuple[str, str]) -> str:
    text = json.dumps(body)
    for old, new in replacements:
        assert old in text
        text = text.replace(old, new)
    return text


@pytest.fixture
def pg_api(postgres_url: str, issue_token: Callable[[str], str]) -> Iterator[tuple[Api, RuleStore]]:
    """The real app over a migrated Postgres store with the usual catalogs and members."""
    from rule_engine.api import create_app
    from rule_engine.api.api_settings import ApiSettings

    store = RuleStore(postgres_url)
    store.upgrade()
    for org in ("acme", "globex"):
        store.put_catalog(organization=org, catalog=catalog_for(org), actor="setup")
    for username, (org, role) in MEMBERS.items():
        store.put_membership(organization=org, username=username, role=role, actor="setup")
    app = create_app(
        store, settings=ApiSettings(rate_limit=""), on_change=None, render_errors_of=lambda _: {}
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(client, issue_token), store
    store.close()


# -- the path and the query (store on Postgres) -------------------------------------------------------


@pytest.mark.postgres
def test_nul_and_control_characters_in_the_path_or_query_are_422_on_postgres(
    pg_api: tuple[Api, RuleStore],
) -> None:
    api, _ = pg_api
    ed = api.as_("ed")
    cases = {
        "/rules/a%00b": "path",
        "/rules/a%0Ab/spec": "path",
        "/reports/a%00": "path",
        "/condition-templates/%00": "path",
        "/logs?rule=a%00": "query.rule",
        "/rules?name_prefix=a%00": "query.name_prefix",
        "/rules?organization=acme%0D%0A": "query.organization",
    }
    for path, where in cases.items():
        response = ed.get(path)
        assert response.status_code == 422, (path, response.text)
        assert _errors(response) == [(where, "control_character")], path
    assert ed.delete("/rules/a%00b", headers={"If-Match": "*"}).status_code == 422
    assert api.as_("ada").put("/memberships/a%00b", json={"role": "viewer"}).status_code == 422
    # the ordinary answers are unchanged
    assert ed.get("/rules/nope").status_code == 404
    assert ed.get("/logs", params={"rule": "nope"}).status_code == 200


@pytest.mark.postgres
def test_nul_in_a_definition_is_422_and_nothing_is_stored_on_postgres(pg_api: tuple[Api, RuleStore]) -> None:
    api, store = pg_api
    body = rule_body()
    body["actions"][0]["values"] = {"note": "pa\u0000id"}
    response = api.as_("ed").post("/rules", json=body)
    assert response.status_code == 422, response.text
    assert _errors(response) == [("actions[0].values.note", "nul_character")]
    with pytest.raises(NotFoundError):
        store.get(organization="acme", kind="rule", name=body["name"])
    described = api.as_("ed").post("/rules", json=rule_body(description="pa\u0000id"))
    assert described.status_code == 422 and _errors(described) == [("description", "nul_character")]
    assert store.list() == []


# -- JSON bodies --------------------------------------------------------------------------------------


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_numbers_in_bodies_are_422(api: Api, store: RuleStore, literal: str) -> None:
    ed = api.as_("ed")
    report = _raw(report_body(), ('"default": 0', f'"default": {literal}'))
    response = ed.post("/reports", content=report, headers=JSON)
    assert response.status_code == 422, response.text
    assert _errors(response) == [("parameters[0].default", "not_finite")]
    with pytest.raises(NotFoundError):
        store.get(organization="acme", kind="report", name="weekly-sales")

    rule = _raw(rule_body(), ('"value": 1000', f'"value": {literal}'))
    validated = api.as_("vera").post("/rules/validate", content=rule, headers=JSON)
    assert validated.status_code == 422 and _errors(validated) == [("conditions.all[1].value", "not_finite")]

    create(api)
    payload = _raw({"payload": {"x": 1.5}}, ("1.5", literal))
    triggered = ed.post("/rules/flag-big-paid-orders/trigger", content=payload, headers=JSON)
    assert triggered.status_code == 422 and _errors(triggered) == [("payload.x", "not_finite")]


def test_a_report_number_default_that_is_finite_still_works(api: Api) -> None:
    response = api.as_("ed").post(
        "/reports", content=_raw(report_body(), ('"default": 0', '"default": 1e300')), headers=JSON
    )
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("levels", [MAX_NESTING_DEPTH, 5_000, 100_000])
def test_bodies_nested_too_deep_are_422(api: Api, levels: int) -> None:
    body = '{"kind": "rule", "x": ' + "[" * levels + "]" * levels + "}"
    response = api.as_("vera").post("/rules/validate", content=body, headers=JSON)
    assert response.status_code == 422, response.text[:300]
    assert _errors(response)[0][1] == "too_deep"
    merge = api.as_("ed").patch(
        "/rules/x", content=body, headers={"Content-Type": "application/merge-patch+json"}
    )
    assert merge.status_code == 422


def test_nesting_within_the_limit_reaches_the_route(api: Api) -> None:
    levels = MAX_NESTING_DEPTH - 2  # the body's mapping and the key's list are two levels already
    body = json.loads('{"x": ' + "[" * levels + "]" * levels + "}")
    response = api.as_("vera").post("/rules/validate", json={**rule_body(), **body})
    assert response.status_code == 200 and response.json()["valid"] is False  # 'x' is an unknown key


def test_nul_and_lone_surrogates_in_event_bodies_are_422(api: Api) -> None:
    event = {
        "id": "shop-1",
        "connection": "app_db",
        "table": "orders",
        "operation": "created",
        "new": {"id": 1},
    }
    ed = api.as_("ed")
    nul = ed.post("/events", json={**event, "id": "shop\u00001"})
    assert nul.status_code == 422 and _errors(nul) == [("id", "nul_character")]
    surrogate = _raw({**event, "new": {"id": 1, "note": "SURROGATE"}}, ("SURROGATE", "\\ud800"))
    response = ed.post("/events", content=surrogate, headers=JSON)
    assert response.status_code == 422 and _errors(response) == [("new.note", "invalid_unicode")]


def test_invalid_json_keeps_its_own_answer(api: Api) -> None:
    response = api.as_("vera").post("/rules/validate", content="{not json", headers=JSON)
    assert response.status_code == 422 and _errors(response)[0][1] == "json_invalid"


# -- crons that never fire ----------------------------------------------------------------------------

NEVER = "0 0 31 2 *"


def test_a_cron_that_never_fires_is_422_at_its_path(api: Api) -> None:
    ed = api.as_("ed")
    trigger = {"type": "schedule", "cron": NEVER, "target": {"connection": "app_db", "table": "orders"}}
    response = ed.post("/rules", json=rule_body(trigger=trigger))
    assert response.status_code == 422 and _errors(response) == [("trigger.cron", "cron_never_fires")]
    validated = ed.post("/rules/validate", json=rule_body(trigger=trigger)).json()
    assert [(e["path"], e["code"]) for e in validated["errors"]] == [("trigger.cron", "cron_never_fires")]
    report = ed.post("/reports", json=report_body(schedule={"cron": NEVER}))
    assert report.status_code == 422 and _errors(report) == [("schedule.cron", "cron_never_fires")]


def _store_cron_unchecked(store: RuleStore, name: str, cron: str) -> None:
    """A new version of a stored rule with ``cron``, written around validation (as before the check)."""
    stored = store.get(organization="acme", kind="rule", name=name)
    source = json.loads(json.dumps(stored.source))
    source["trigger"]["cron"] = cron
    store.apply(
        DefinitionWrite(
            organization="acme",
            kind="rule",
            name=name,
            dag_id=stored.dag_id,
            source=source,
            source_hash=content_hash(source),
            spec_json=stored.spec_json,
            spec_hash=stored.spec_hash,
            active=True,
            actor="setup",
            compiler_version=COMPILER_VERSION,
        )
    )


def test_next_runs_of_a_stored_cron_that_never_fires_is_empty(api: Api, store: RuleStore) -> None:
    create(api, "escalate-vip-orders")
    _store_cron_unchecked(store, "escalate-vip-orders", NEVER)
    response = api.as_("ed").get("/rules/escalate-vip-orders/next-runs")
    assert response.status_code == 200, response.text
    assert response.json()["runs"] == [] and response.json()["cron"] == NEVER


# -- membership usernames -----------------------------------------------------------------------------


@pytest.mark.parametrize("username", ["a%20b", "a%0Ab", "a%09b", "%C3%A4", "a%2Cb"])
def test_odd_usernames_are_422(api: Api, store: RuleStore, username: str) -> None:
    response = api.as_("ada").put(f"/memberships/{username}", json={"role": "viewer"})
    assert response.status_code == 422, response.text
    assert [m.username for m in store.list_memberships("acme")] == ["ada", "ed", "vera"]


def test_usual_usernames_are_accepted(api: Api) -> None:
    ada = api.as_("ada")
    for username in ("zoe", "zoe.lane@acme.example", "svc_reports-2"):
        assert ada.put(f"/memberships/{username}", json={"role": "viewer"}).status_code == 201, username


# -- webhook URLs -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com:22/x",
        "https://hooks.example.com/a b",
        "https://999.1.1.1/",
        "https://intranet/x",
    ],
)
def test_webhook_urls_the_send_time_guard_refuses_do_not_register(
    api: Api, store: RuleStore, url: str
) -> None:
    body = rule_body(actions=[{"id": "hook", "type": "call_webhook", "url": url}])
    validated = api.as_("vera").post("/rules/validate", json=body).json()
    assert [(e["path"], e["code"]) for e in validated["errors"]] == [("actions[0].url", "url")]
    response = api.as_("ed").post("/rules", json=body)
    assert response.status_code == 422 and _errors(response) == [("actions[0].url", "url")]
    assert store.list() == []
