"""The rule editor in Airflow's UI, driven in Chromium (a subtest of tests/api/test_standalone_e2e.py,
which shares its ``airflow standalone``): a stored rule opens as a form and as YAML; a YAML edit shows in
the form and a form edit in the YAML (one document); a field the catalog lacks gets the REST view's
problem at its path; the rule is saved with If-Match, tested on an example event with its trace, and
compared with its previous version; axe-core finds no serious or critical violation at 1280 and 768 px."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.api.browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, accessibility_problems, chromium, sign_in
from tests.standalone import Standalone

RULE = "flag-big-paid-orders"
API = "/automations/api/v1"
EVENT = (
    '{"table": "orders", "operation": "updated", "key": {"id": 7},'
    ' "new": {"id": 7, "status": "paid", "total": 2500}}'
)


def _stored(client: httpx.Client, headers: dict[str, str]) -> dict[str, Any]:
    answer = client.get(f"{API}/rules/{RULE}", headers=headers)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def rule_editor_edits_tests_and_compares_a_rule(standalone: Standalone) -> None:
    client = httpx.Client(base_url=standalone.base_url, timeout=30)
    login = client.post("/auth/token", json={"username": "ed", "password": "ed-password"})
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    version = _stored(client, headers)["version"]

    sync_playwright = chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport={"width": 1280, "height": 1000}).new_page()
            page.set_default_timeout(30_000)
            sign_in(page, standalone.base_url, "/plugin/automations", "ed", "ed-password")
            frame = page.frame_locator("iframe")
            frame.get_by_role("link", name="Definitions").click()
            frame.get_by_role("link", name=f"Edit in the rule editor ({RULE})").click()
            frame.get_by_role("heading", name=f"Rule {RULE} version {version}").wait_for()
            yaml = frame.get_by_label("Definition (YAML)")
            description = frame.get_by_label(re.compile("^Description"))
            description.wait_for()

            # YAML -> form, and a field the catalog lacks: the REST view's problem at its path
            text = yaml.input_value()
            assert "field: status" in text
            yaml.fill(
                re.sub(r"(?m)^description: .*$", "description: Edited as YAML.", text).replace(
                    "field: status", "field: no_such_column"
                )
            )
            frame.get_by_role("list", name="problems of the rule").get_by_text(
                "conditions.all[0].field"
            ).wait_for()
            assert description.input_value() == "Edited as YAML."

            # form -> YAML, then the column fixed in the YAML, and saved
            description.fill("Edited in the form.")
            assert "description: Edited in the form." in yaml.input_value()
            yaml.fill(yaml.input_value().replace("field: no_such_column", "field: status"))
            frame.get_by_role("list", name="problems of the rule").wait_for(state="detached")
            frame.get_by_role("button", name="Save").click()
            frame.get_by_role("status").filter(has_text=f"Saved as version {version + 1}.").wait_for()
            assert _stored(client, headers)["definition"]["description"] == "Edited in the form."

            # the tester, on the saved rule
            frame.get_by_label("Example event (JSON)").fill(EVENT)
            frame.get_by_role("button", name="Run the test").click()
            frame.get_by_text("The rule fires for this event.").wait_for()

            # the previous version against this one
            frame.get_by_label("Compare with").select_option(str(version))
            changes = frame.get_by_role("list", name=f"changes since version {version}")
            changes.get_by_text("description").first.wait_for()

            problems = {1280: accessibility_problems(page)}
            page.set_viewport_size({"width": 768, "height": 1000})
            problems[768] = accessibility_problems(page)
            page.set_viewport_size({"width": 1280, "height": 1000})
            assert problems == {1280: [], 768: []}, problems
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "rule-editor.png"), full_page=True)
        finally:
            browser.close()
