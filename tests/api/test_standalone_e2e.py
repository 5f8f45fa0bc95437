"""End-to-end checks against the real api-server started by ``airflow standalone``: one standalone
serves both, as two subtests of one test.

Cost: about 70-100 s on this 2-core machine (standalone start ~15-25 s, then a parse, a run and its
log, and a browser), so the test is marked ``slow``. One test rather than two tests sharing a
module-scoped fixture: ``make test`` runs ``pytest -n 2``, which may send two tests of a module to
different workers, each then starting its own standalone, and pytest-xdist 3.8's ``--dist loadgroup``
has no effect under pytest 9 (it renames ``item._nodeid``, which pytest 9 no longer reads). A
failing subtest does not stop the other one, and each is reported on its own.

- The API check logs in with a password through ``POST /auth/token`` (a real JWT), validates a rule
  sent as YAML, creates a rule through ``/automations/api/v1``, and checks that the DAG appears
  because the API asked Airflow to re-parse the loader file (the periodic re-parse is set to 10
  minutes here), that it runs, and that its automation log is readable through ``/logs``.
- The UI check reads the plugin's "Automations" entry and "Automation" DAG and run tabs back from
  ``/api/v2/plugins``, then opens them in Airflow's own UI: the overview in the iframe shows the run
  of the first check, the DAG's tab lists it, and the run's tab shows it in the run explorer with its
  traced rows and action; on the definitions page, reached from the overview with the keyboard alone,
  the rule is deactivated and activated again and its last run opened in the explorer (Tab, Enter and
  typing only); axe-core finds no serious or critical violation in the overview and the definitions
  page (at 1280 and 768 px, with no horizontal scroll) or the explorer. The screenshots are kept in
  ``test-artifacts/`` (``TEST_ARTIFACTS`` moves it).
- The browser check drives Debian's Chromium through Playwright (never ``playwright install``: no
  browser is downloaded): it signs in on Airflow's login page as a user does, is sent on to
  ``/automations/docs``, and checks that Swagger UI lists the operations, with every request the page
  made answered by 127.0.0.1 (any other host is aborted and fails the test).
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest
import sqlalchemy as sa

from rule_compiler.store import RuleStore
from tests.api.browser import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    accessibility_problems,
    chromium,
    tab_to,
)
from tests.api.conftest import catalog_for, rule_body
from tests.api.e2e_designer import designer_edits_a_stored_workflow, keyboard_builds_a_workflow_that_runs
from tests.api.e2e_rule_editor import rule_editor_edits_tests_and_compares_a_rule
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
def standalone(tmp_path: Path, postgres_databases: Any, one_deployment: None) -> Iterator[Standalone]:
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
        tmp_path / "airflow",
        metadata_url=postgres_databases.create(),
        users={"ed": ("user", "ed-password")},
        parallelism=2,
        env=env,
    ) as running:
        yield running


def test_one_standalone_serves_the_api_and_its_docs_page(
    standalone: Standalone, subtests: pytest.Subtests
) -> None:
    standalone.wait_healthy()
    with subtests.test("the API: a rule created through /automations runs and its log is readable"):
        _rule_created_through_the_api_runs_and_its_log_is_readable(standalone)
    with subtests.test("a browser signed in on Airflow's login page sees the docs, offline"):
        _a_browser_signed_in_on_the_login_page_sees_the_docs_offline(standalone)
    with subtests.test("Airflow's UI lists the Automations page, and shows the organization's runs in it"):
        _airflows_ui_shows_the_automations_overview(standalone)
    with subtests.test(
        "the designer moves, connects and validates a workflow, and refuses a conflicting save"
    ):
        designer_edits_a_stored_workflow(standalone)
    with subtests.test("a workflow built with the keyboard alone is saved, runs, and shows its path"):
        keyboard_builds_a_workflow_that_runs(standalone)
    with subtests.test("the rule editor edits one document as a form and as YAML, saves, tests, compares"):
        rule_editor_edits_tests_and_compares_a_rule(standalone)


def _rule_created_through_the_api_runs_and_its_log_is_readable(standalone: Standalone) -> None:
    client = httpx.Client(base_url=standalone.base_url, timeout=30)

    assert client.get("/automations/api/v1/rules").status_code == 401
    assert client.get("/automations/docs").status_code == 401
    login = client.post("/auth/token", json={"username": "ed", "password": "ed-password"})
    assert login.status_code == 201, login.text
    auth = {"Authorization": f"Bearer {login.json()['access_token']}"}
    assert client.get("/automations/docs", headers=auth).status_code == 200

    index = client.get("/automations/api/v1/", headers=auth)  # the README's URL
    assert index.status_code == 200, index.text
    assert index.json()["docs"] == f"{standalone.base_url}/automations/docs"
    assert index.json()["collections"]["rules"] == f"{standalone.base_url}/automations/api/v1/rules"

    as_yaml = (ROOT / "include" / "rules" / "flag-big-paid-orders.yaml").read_bytes()
    checked = client.post(
        "/automations/api/v1/rules/validate",
        content=as_yaml,
        headers={**auth, "Content-Type": "application/yaml"},
    )
    assert checked.status_code == 200, checked.text
    assert checked.json()["valid"] is True

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
    assert run.status_code == 200, standalone.explain(run)
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
    # who triggered it (ADR 0013): the user who triggered the run through Airflow's API is its actor
    mine = client.get("/automations/api/v1/logs", params={"actor": "ed", "table": "orders"}, headers=auth)
    assert [item["run_id"] for item in mine.json()["items"]] == [run_id], mine.text
    detail = client.get(f"/automations/api/v1/logs/{entry['id']}", headers=auth).json()
    assert detail["trace"] is not None
    assert [(a["action_id"], a["status"]) for a in detail["actions"]] == [("flag", "success")]


def _a_browser_signed_in_on_the_login_page_sees_the_docs_offline(standalone: Standalone) -> None:
    sync_playwright = chromium()
    local = urlsplit(standalone.base_url).hostname
    assert local == "127.0.0.1"
    seen: list[str] = []
    refused: list[str] = []

    def only_loopback(route: Any) -> None:
        url = route.request.url
        seen.append(url)
        if urlsplit(url).hostname == local:
            route.continue_()
        else:
            refused.append(url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context()
            context.route("**/*", only_loopback)
            page = context.new_page()
            page.set_default_timeout(30_000)
            page.goto(f"{standalone.base_url}/auth/login/?next=/automations/docs")
            page.fill("input[name=username]", "ed")
            page.fill("input[name=password]", "ed-password")
            page.click("button[type=submit]")
            page.wait_for_url(f"{standalone.base_url}/automations/docs")
            assert any(c["name"] == "_token" for c in context.cookies()), "the login set no _token cookie"

            page.wait_for_selector("#operations-tag-rules")  # the "rules" tag section
            create = page.locator("#operations-rules-rules-create_rule")
            create.wait_for()
            assert "/api/v1/rules" in create.inner_text()
            assert page.locator(".opblock").count() >= 50  # every operation is listed
            create.locator(".opblock-summary").click()  # the request body offers YAML beside JSON
            media_types = page.locator(".opblock-body select.content-type option").all_inner_texts()
            assert {"application/json", "application/yaml"} <= set(media_types), media_types
            assert page.locator(".swagger-ui .info .title").inner_text().startswith("Automation rule engine")
        finally:
            browser.close()

    assert refused == [], f"requests to other hosts: {refused}"
    assert f"{standalone.base_url}/automations/docs/assets/swagger-ui-bundle.js" in seen
    assert f"{standalone.base_url}/automations/openapi.json" in seen


def _airflows_ui_shows_the_automations_overview(standalone: Standalone) -> None:
    client = httpx.Client(base_url=standalone.base_url, timeout=30)
    token = client.post("/auth/token", json={"username": "ed", "password": "ed-password"}).json()[
        "access_token"
    ]
    plugins = client.get("/api/v2/plugins", headers={"Authorization": f"Bearer {token}"})
    assert plugins.status_code == 200, standalone.explain(plugins)
    (ours,) = [p for p in plugins.json()["plugins"] if p["name"] == "rule_engine"]
    assert [(v["name"], v["href"], v["destination"], v["url_route"]) for v in ours["external_views"]] == [
        ("Automations", "/automations/ui/?page=overview", "nav", "automations"),
        ("Automation", "/automations/ui/?page=definition&dag_id={DAG_ID}", "dag", "automation"),
        (
            "Automation",
            "/automations/ui/?page=run&dag_id={DAG_ID}&run_id={RUN_ID}",
            "dag_run",
            "automation-run",
        ),
    ]
    for name in ("escalate-vip-orders", "expedite-vip-payments"):  # two more for the definitions page
        made = client.post(
            "/automations/api/v1/rules",
            json=rule_body(name, active=False),
            headers={"Authorization": f"Bearer {token}"},
        )
        assert made.status_code == 201, made.text
    runs = client.get(f"/api/v2/dags/{DAG_ID}/dagRuns", headers={"Authorization": f"Bearer {token}"}).json()
    run_id = runs["dag_runs"][0]["dag_run_id"]  # the run of the API check

    sync_playwright = chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.set_default_timeout(30_000)
            page.goto(f"{standalone.base_url}/auth/login/?next=/plugin/automations")
            page.fill("input[name=username]", "ed")
            page.fill("input[name=password]", "ed-password")
            page.click("button[type=submit]")
            page.wait_for_url(f"{standalone.base_url}/plugin/automations")
            frame = page.frame_locator("iframe")
            frame.get_by_role("heading", name="Overview of acme").wait_for()
            runs = frame.locator("dl.cards div", has_text="Runs").locator("dd")
            runs.wait_for()
            assert int(runs.inner_text().replace(",", "")) >= 1  # the run of the API check
            frame.get_by_role("rowheader", name="flag-big-paid-orders").wait_for()
            problems = {width: accessibility_problems(page) for width in (1280,)}
            page.set_viewport_size({"width": 768, "height": 900})
            problems[768] = accessibility_problems(page)
            page.set_viewport_size({"width": 1280, "height": 900})
            assert problems == {1280: [], 768: []}, problems
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "automations-overview.png"), full_page=True)

            _the_definitions_page_works_from_the_keyboard(
                standalone, {"Authorization": f"Bearer {token}"}, page, run_id
            )

            # the rule on its DAG's "Automation" tab, its latest run linking to the explorer
            page.goto(f"{standalone.base_url}/dags/{DAG_ID}/plugin/automation")
            frame = page.frame_locator("iframe")
            frame.get_by_role("heading", name="rule flag-big-paid-orders (acme), last 30 days").wait_for()
            frame.get_by_role("link", name=run_id).wait_for()

            # the same run in the explorer, from the "Automation" tab of its DAG run
            page.goto(f"{standalone.base_url}/dags/{DAG_ID}/runs/{run_id}/plugin/automation-run")
            frame = page.frame_locator("iframe")
            frame.get_by_role("heading", name=f"rule flag-big-paid-orders: run {run_id}").wait_for()
            assert frame.locator(".items > li").count() >= 1  # the traced rows of the run
            frame.get_by_text(": matched").first.wait_for()
            frame.get_by_role("rowheader", name="flag").wait_for()
            assert accessibility_problems(page) == []
            page.screenshot(path=str(ARTIFACTS / "automation-run-explorer.png"), full_page=True)
        finally:
            browser.close()


def _the_definitions_page_works_from_the_keyboard(
    standalone: Standalone, auth: dict[str, str], page: Any, run_id: str
) -> None:
    """From the overview to the definitions page, a deactivation and an activation, and a run started from
    the list and opened in the explorer: with the keyboard alone (Tab, Enter, typing)."""
    frame = page.frame_locator("iframe")
    frame.get_by_role("link", name="Overview").focus()  # where Tab brings a user into the frame
    tab_to(page, "Definitions")
    page.keyboard.press("Enter")
    frame.get_by_role("heading", name="Definitions of acme").wait_for()
    row = frame.get_by_role("row").filter(has=frame.get_by_role("rowheader", name="flag-big-paid-orders"))
    row.get_by_text("active", exact=True).wait_for()
    assert row.get_by_text("sales-ops").count() == 1
    paused = frame.get_by_role("row").filter(has=frame.get_by_role("rowheader", name="escalate-vip-orders"))
    paused.get_by_text("paused", exact=True).wait_for()
    assert paused.get_by_text("schedule: */15 * * * * (Europe/Berlin)").count() == 1
    assert frame.get_by_role("rowheader").count() == 3
    assert row.get_by_role("img").get_attribute("aria-label").startswith("success rate by day: ")
    tab_to(page, "Search")  # the search box is labelled; its accessible name is not its text
    page.keyboard.type("no such definition")
    frame.get_by_text("No definition matches.").wait_for()
    for _ in range(len("no such definition")):
        page.keyboard.press("Backspace")
    row.wait_for()

    # deactivate and activate again: the button is reached and pressed from the keyboard
    tab_to(page, "Deactivate rule flag-big-paid-orders")
    page.keyboard.press("Enter")
    frame.get_by_text("rule flag-big-paid-orders is deactivated.").wait_for()
    row.get_by_text("paused", exact=True).wait_for()
    tab_to(page, "Activate rule flag-big-paid-orders")
    page.keyboard.press("Enter")
    frame.get_by_text("rule flag-big-paid-orders is activated.").wait_for()
    row.get_by_text("active", exact=True).wait_for()

    problems = {1280: accessibility_problems(page)}
    page.set_viewport_size({"width": 768, "height": 900})
    problems[768] = accessibility_problems(page)
    page.set_viewport_size({"width": 1280, "height": 900})
    assert problems == {1280: [], 768: []}, problems
    page.screenshot(path=str(ARTIFACTS / "automations-definitions.png"), full_page=True)

    # its last run (the API check's) links to the explorer
    assert row.get_by_role("link", name="success").get_attribute("href").endswith(quote(run_id, safe=""))

    # run it now from the list, and open that run in the explorer once Airflow has logged it
    tab_to(page, "Run now: rule flag-big-paid-orders")
    page.keyboard.press("Enter")
    started = frame.get_by_role("status").filter(has_text="started.")
    started.wait_for()
    new_run = re.search(r"run (\S+) started\.", started.inner_text())
    assert new_run is not None and new_run.group(1) != run_id
    tab_to(page, "Open the run")
    page.keyboard.press("Enter")
    heading = frame.get_by_role("heading", name=f"rule flag-big-paid-orders: run {new_run.group(1)}")
    frame.get_by_text(re.compile("has no run .* yet")).or_(heading).first.wait_for()
    # Airflow runs it (minutes on a loaded 2-core CI machine); the explorer looks again by itself
    client, url = standalone.client(), f"/api/v2/dags/{DAG_ID}/dagRuns/{new_run.group(1)}"
    state = standalone.wait_for(
        "the run started from the list to finish",
        lambda: (s := client.get(url, headers=auth).json()["state"]) in {"success", "failed"} and s,
        300,
        interval=2,
    )
    assert state == "success"
    heading.wait_for(timeout=60_000)
    frame.get_by_text(": matched").first.wait_for()
