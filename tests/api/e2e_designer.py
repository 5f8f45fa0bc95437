"""The workflow designer and its templates in Airflow's UI, driven in Chromium (subtests of
tests/api/test_standalone_e2e.py, which shares its ``airflow standalone``): a stored workflow opens at
its stored positions; a node dragged with the mouse and saved keeps its new place, and the diff with
version 1 marks it moved; the tester colours the path of a big paid order; a save that meets someone
else's change is refused and said; a node's form (from the format's JSON Schema) offers the catalog's
tables, and a table that is not one carries the REST view's problem on that node; a node is selected and
connected from the keyboard; axe-core finds no serious or critical violation at 1280 and 768 px. A new
3-node workflow is built with the mouse alone (palette, handles dragged, branch chosen), saved, saved
as a template and started from it; its DAG appears in Airflow, runs, and its run shows its path in the
explorer. The same 3-node workflow is built with the keyboard alone, and runs too."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx

from tests.api.browser import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    accessibility_problems,
    chromium,
    screenshot_on_failure,
    sign_in,
    tab_to,
)
from tests.api.test_workflows_api import _body
from tests.standalone import Standalone

WORKFLOW = "route-new-orders"
API = "/automations/api/v1"


def _workflow(client: httpx.Client, headers: dict[str, str], name: str = WORKFLOW) -> dict[str, Any]:
    answer = client.get(f"{API}/workflows/{name}", headers=headers)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def _node(workflow: dict[str, Any], node_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(n for n in workflow["definition"]["nodes"] if n["id"] == node_id)
    return found


def designer_edits_a_stored_workflow(standalone: Standalone) -> None:
    client = httpx.Client(base_url=standalone.base_url, timeout=30)
    login = client.post("/auth/token", json={"username": "ed", "password": "ed-password"})
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    template = client.post(
        f"{API}/condition-templates", json=_body("templates", "big-order"), headers=headers
    )
    assert template.status_code == 201, template.text
    made = client.post(f"{API}/workflows", json=_body("workflows", WORKFLOW, active=False), headers=headers)
    assert made.status_code == 201, made.text
    before = _node(_workflow(client, headers), "stamp")["position"]

    sync_playwright = chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport={"width": 1280, "height": 1000}).new_page()
            page.set_default_timeout(30_000)
            sign_in(page, standalone.base_url, "/plugin/automations", "ed", "ed-password")
            frame = page.frame_locator("iframe")
            frame.get_by_role("link", name="Definitions").click()
            frame.get_by_role("link", name=f"Edit in the designer ({WORKFLOW})").click()
            frame.get_by_role("heading", name=f"Workflow {WORKFLOW} version 1").wait_for()
            nodes = frame.locator(".react-flow__node")
            nodes.first.wait_for()
            assert nodes.count() == 6

            # drag a node with the mouse, save: the stored position follows
            stamp = frame.locator('.react-flow__node[data-id="stamp"]')
            box = stamp.bounding_box()
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            page.mouse.down()
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2 + 90, steps=8)
            page.mouse.up()
            frame.get_by_role("button", name="Save").click()
            frame.get_by_role("status").filter(has_text="Saved as version 2.").wait_for()
            after = _node(_workflow(client, headers), "stamp")["position"]
            assert after["x"] == before["x"] and after["y"] > before["y"], (before, after)

            # the visual diff: version 1 against the canvas marks the moved node
            frame.get_by_label("Compare with").select_option("1")
            frame.get_by_role("list", name="changes since version 1").get_by_text("moved: stamp").wait_for()
            frame.locator('.react-flow__node.diff-moved[data-id="stamp"]').wait_for()
            frame.get_by_label("Compare with").select_option("")

            # the tester walks an event through the saved workflow and colours each node's step
            frame.get_by_label("Example event (JSON)").fill(
                '{"table": "orders", "operation": "created", "key": {"id": 1},'
                ' "new": {"id": 1, "status": "paid", "total": 2500}}'
            )
            frame.get_by_role("button", name="Run the test").click()
            frame.get_by_role("status").filter(has_text="The event starts a run").wait_for()
            frame.locator('.react-flow__node.test-passed[data-id="make-high"]').wait_for()
            frame.locator('.react-flow__node.test-skipped[data-id="make-normal"]').wait_for()
            frame.get_by_role("button", name="Clear the test").click()

            # someone else saves meanwhile: the designer's next save is refused and said
            current = _workflow(client, headers)
            other = client.patch(
                f"{API}/workflows/{WORKFLOW}",
                json={"description": "changed by someone else"},
                headers={**headers, "If-Match": current["etag"]},
            )
            assert other.status_code == 200, other.text
            box = stamp.bounding_box()
            page.mouse.move(box["x"] + 10, box["y"] + 10)
            page.mouse.down()
            page.mouse.move(box["x"] + 10, box["y"] + 60, steps=5)
            page.mouse.up()
            frame.get_by_role("button", name="Save").click()
            frame.get_by_role("alert").filter(
                has_text="someone saved this workflow after you opened it"
            ).wait_for()
            assert _workflow(client, headers)["definition"]["description"] == "changed by someone else"

            # the node's form (from the format's JSON Schema) offers the catalog's tables; a table that is
            # not one: the REST view's problem is drawn on that node and listed
            frame.locator('.react-flow__node[data-id="make-high"]').click()
            panel = frame.get_by_role("region", name="action node make-high")
            table = panel.get_by_label(re.compile("^Table"))
            assert table.input_value() == "orders"
            # the catalog's tables, read when a node is first opened
            offered = panel.locator("datalist:has(option[value=customers])")
            offered.wait_for(state="attached")
            assert table.get_attribute("list") == offered.get_attribute("id")
            table.fill("no_such_table")
            assert '"table": "no_such_table"' in panel.get_by_label("Configuration (JSON)").input_value()
            frame.locator('.react-flow__node.has-error[data-id="make-high"]').wait_for()
            frame.get_by_role("button", name="Show make-high").first.wait_for()

            # the keyboard: select a node with Enter, connect it from the side panel's menu
            frame.locator('.react-flow__node[data-id="make-normal"]').focus()
            page.keyboard.press("Enter")
            panel = frame.get_by_role("region", name="action node make-normal")
            panel.wait_for()
            panel.get_by_label("Connect to").focus()
            panel.get_by_label("Connect to").select_option("stamp")
            panel.get_by_role("button", name="Connect", exact=True).focus()
            page.keyboard.press("Enter")
            panel.get_by_role("button", name="Disconnect make-normal from stamp").wait_for()

            problems = {1280: accessibility_problems(page)}
            page.set_viewport_size({"width": 768, "height": 1000})
            problems[768] = accessibility_problems(page)
            page.set_viewport_size({"width": 1280, "height": 1000})
            assert problems == {1280: [], 768: []}, problems
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "workflow-designer.png"), full_page=True)

            _the_mouse_builds_a_workflow(page)
        finally:
            browser.close()
    stored = _workflow(client, headers, DRAWN)["definition"]
    assert [n["id"] for n in stored["nodes"]] == ["start", "condition-1", "action-1"]
    assert stored["connections"] == [
        {"from": "start", "to": "condition-1"},
        {"from": "condition-1", "to": "action-1", "when": "true"},
    ]
    assert stored["nodes"][2]["position"]["y"] > stored["nodes"][1]["position"]["y"]  # dragged down
    _runs_and_shows_its_path(standalone, client, headers, DRAWN, "workflow-drawn-run-path.png")


DRAWN = "mouse-flow"


def _settled_box(locator: Any, timeout: float = 10) -> Any:
    """The element's bounding box once it stopped moving (React Flow animates "fit view"; on a busy
    machine a box read mid-animation sends the drag elsewhere)."""
    deadline = time.monotonic() + timeout
    box = locator.bounding_box()
    while time.monotonic() < deadline:
        time.sleep(0.15)
        again = locator.bounding_box()
        if again == box:
            return box
        box = again
    return box


def _drag(page: Any, source: Any, target: Any | None = None, down: float = 0) -> None:
    """Press the mouse on ``source``'s centre, move in steps to ``target``'s (or ``down`` px lower), and
    release."""
    a = _settled_box(source)
    b = _settled_box(target) if target is not None else {**a, "y": a["y"] + down}
    page.mouse.move(a["x"] + a["width"] / 2, a["y"] + a["height"] / 2)
    page.mouse.down()
    page.mouse.move(b["x"] + b["width"] / 2, b["y"] + b["height"] / 2, steps=12)
    page.mouse.up()


def _the_mouse_builds_a_workflow(page: Any) -> None:
    """A new 3-node workflow from the palette, configured in the side panel, connected by dragging from
    a node's handle to another's (the branch chosen in the dialog), a node dragged, and saved; then saved
    as a workflow template, and a new workflow started from that template."""
    frame = page.frame_locator("iframe")

    def node(name: str) -> Any:
        return frame.locator(f'.react-flow__node[data-id="{name}"]')

    frame.get_by_role("link", name="Definitions").click()
    frame.get_by_role("link", name="New workflow in the designer").click()
    frame.get_by_role("heading", name="New workflow").wait_for()
    frame.get_by_label("Name", exact=True).fill(DRAWN)
    for name, kind, fields in (
        ("start", "", START),
        ("condition-1", "condition", IS_PAID),
        ("action-1", "action", FLAG),
    ):
        if kind:
            frame.get_by_role("button", name=f"+ {kind}").click()
        else:
            node("start").click()
        frame.get_by_label("Configuration (JSON)").fill(fields)
        frame.get_by_role("button", name=f"Apply to {name}").click()
    frame.get_by_role("button", name="fit view").click()
    _drag(page, node("action-1"), down=80)
    frame.get_by_role("button", name="fit view").click()
    _drag(
        page,
        node("start").locator(".react-flow__handle.source"),
        node("condition-1").locator(".react-flow__handle.target"),
    )
    _drag(
        page,
        node("condition-1").locator(".react-flow__handle.source"),
        node("action-1").locator(".react-flow__handle.target"),
    )
    frame.get_by_role("dialog", name="Which branch does this connection carry?").get_by_role(
        "button", name="true"
    ).click()
    frame.locator(".react-flow__edge").nth(1).wait_for()
    frame.get_by_role("button", name="Save").click()
    frame.get_by_role("status").filter(has_text="Saved as version 1.").wait_for()

    # the whole workflow saved as a template, and a new workflow started from it
    frame.locator(".react-flow__pane").click(
        position={"x": 8, "y": 8}
    )  # nothing selected: the whole workflow
    frame.get_by_text("Save as a template").click()
    frame.get_by_label("Template name").fill(f"{DRAWN}-template")
    frame.get_by_role("button", name="Save the whole workflow as a template").click()
    frame.get_by_role("status").filter(
        has_text=f"Saved workflow template {DRAWN}-template (version 1)."
    ).wait_for()
    frame.get_by_role("link", name="Definitions").click()
    frame.get_by_role("link", name="New workflow in the designer").click()
    frame.get_by_text("Start from a template").click()
    frame.get_by_label("Template", exact=True).select_option(f"{DRAWN}-template")
    frame.get_by_role("button", name=f"Start from {DRAWN}-template").click()
    frame.get_by_role("status").filter(has_text=f"Started from template {DRAWN}-template").wait_for()
    node("action-1").wait_for()
    assert frame.locator(".react-flow__node").count() == 3


BUILT = "keyboard-flow"
#: The three nodes' configurations, typed into the side panel.
START = '{"trigger": {"type": "manual", "target": {"connection": "app_db", "table": "orders"}}}'
IS_PAID = '{"conditions": {"all": [{"field": "status", "operator": "equals", "value": "paid"}]}}'
FLAG = (
    '{"action": {"type": "update_record", "connection": "app_db", "table": "orders",'
    ' "values": {"priority": "high"}}}'
)


def _configure(page: Any, node: str, fields: str) -> None:
    """Type a node's configuration into the side panel and apply it, from the keyboard."""
    tab_to(page, "Configuration (JSON)")
    page.keyboard.press("Control+A")
    page.keyboard.type(fields)
    tab_to(page, f"Apply to {node}")
    page.keyboard.press("Enter")


def _select(page: Any, node: str) -> None:
    tab_to(page, node)
    page.keyboard.press("Enter")


def keyboard_builds_a_workflow_that_runs(standalone: Standalone) -> None:
    """A 3-node workflow built with the keyboard alone (Tab, Enter, arrows, typing), saved; its DAG
    appears in Airflow, runs, and its run shows the path in the explorer."""
    client = httpx.Client(base_url=standalone.base_url, timeout=30)
    login = client.post("/auth/token", json={"username": "ed", "password": "ed-password"})
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    sync_playwright = chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport={"width": 1280, "height": 1000}).new_page()
            page.set_default_timeout(30_000)
            sign_in(page, standalone.base_url, "/plugin/automations", "ed", "ed-password")
            frame = page.frame_locator("iframe")
            frame.get_by_role("link", name="Overview").focus()  # where Tab brings a user into the frame
            tab_to(page, "Definitions")
            page.keyboard.press("Enter")
            frame.get_by_role("heading", name="Definitions of acme").wait_for()
            tab_to(page, "New workflow in the designer")
            page.keyboard.press("Enter")
            frame.get_by_role("heading", name="New workflow").wait_for()
            with screenshot_on_failure(page, "keyboard-designer"):
                tab_to(page, "Name")
                page.keyboard.type(BUILT)

                _select(page, "trigger node start")
                _configure(page, "start", START)
                for kind, node, fields in (
                    ("condition", "condition-1", IS_PAID),
                    ("action", "action-1", FLAG),
                ):
                    tab_to(page, f"+ {kind}")
                    page.keyboard.press("Enter")  # the new node is selected
                    frame.get_by_role("region", name=f"{kind} node {node}").wait_for()
                    _configure(page, node, fields)

                _select(page, "trigger node start")  # start -> condition-1 (the first node offered)
                tab_to(page, "Connect")
                page.keyboard.press("Enter")
                frame.get_by_role("button", name="Disconnect start from condition-1").wait_for()
                _select(page, "condition node condition-1")  # condition-1 -> action-1 when true
                tab_to(page, "Connect to")
                page.keyboard.press("ArrowDown")  # start, then action-1
                tab_to(page, "Connect")
                page.keyboard.press("Enter")
                frame.get_by_role("button", name="Disconnect condition-1 from action-1 (true)").wait_for()
                tab_to(page, "Save")
                page.keyboard.press("Enter")
                frame.get_by_role("status").filter(has_text="Saved as version 1.").wait_for()
        finally:
            browser.close()

    stored = client.get(f"{API}/workflows/{BUILT}", headers=headers).json()["definition"]
    assert [n["id"] for n in stored["nodes"]] == ["start", "condition-1", "action-1"]
    assert stored["connections"] == [
        {"from": "start", "to": "condition-1"},
        {"from": "condition-1", "to": "action-1", "when": "true"},
    ]
    _runs_and_shows_its_path(standalone, client, headers, BUILT, "workflow-run-path.png")


def _runs_and_shows_its_path(
    standalone: Standalone, client: httpx.Client, headers: dict[str, str], name: str, screenshot: str
) -> None:
    """The saved workflow's DAG appears in Airflow, a run of it succeeds, and the run's Automation tab
    shows its nodes in order and the path its items took."""
    dag = f"workflow__acme__{name}"
    standalone.wait_for(
        f"the DAG of workflow {name} to be parsed",
        lambda: client.get(f"/api/v2/dags/{dag}", headers=headers).status_code == 200,
        120,
    )
    run = client.post(f"/api/v2/dags/{dag}/dagRuns", json={"logical_date": None}, headers=headers)
    assert run.status_code == 200, standalone.explain(run)
    run_id = run.json()["dag_run_id"]
    state = standalone.wait_for(
        f"the run of workflow {name} to finish",
        lambda: (
            (s := client.get(f"/api/v2/dags/{dag}/dagRuns/{run_id}", headers=headers).json()["state"])
            in {"success", "failed"}
            and s
        ),
        180,
    )
    assert state == "success"
    with chromium()() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport={"width": 1280, "height": 1000}).new_page()
            page.set_default_timeout(30_000)
            sign_in(page, standalone.base_url, "/plugin/automations", "ed", "ed-password")
            page.goto(f"{standalone.base_url}/dags/{dag}/runs/{run_id}/plugin/automation-run")
            frame = page.frame_locator("iframe")
            frame.get_by_role("heading", name=f"workflow {name}: run {run_id}").wait_for()
            nodes = frame.get_by_role("table", name="The workflow's nodes in this run")
            nodes.wait_for()
            assert nodes.get_by_role("rowheader").all_inner_texts() == ["start", "condition-1", "action-1"]
            frame.get_by_role("list", name="path through the workflow").first.wait_for()
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / screenshot), full_page=True)
        finally:
            browser.close()
