"""Time to interactive in ``benchmarks/ui.py``, each page against a bare page showing the same thing:

- the definitions page with 1,000 definitions, against a bare page that fetches the same
  ``GET /definitions`` and writes the same table with ``innerHTML`` (:data:`BARE_TABLE`);
- a 200-node workflow in the designer, against a bare React Flow page drawing the same stored workflow
  (``ui/bench/``, built by :func:`build_bare_flow` with the project's own Vite and React Flow into a
  temporary folder). :func:`big_workflow` is that workflow: a manual trigger on ``orders``, then condition
  nodes, each with a ``true`` and a ``false`` action, at grid positions.

Interactive = the page shows everything (all the table's rows; all the nodes, measured by React Flow,
so visible), then the main thread has run a task after the next frame. Pages are loaded from uvicorn on
127.0.0.1 with the ``_token`` cookie Airflow's UI sets, by Debian's Chromium through Playwright, the
two sides of a case alternating.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from api import compared, fail
from bench_common import progress

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
UI = Path(__file__).resolve().parent.parent / "ui"
WARM_UP = 3
WORKFLOW = "big-flow"
NODES = 200
COLUMNS = 12


def big_workflow(nodes: int = NODES) -> dict[str, Any]:
    """A workflow of ``nodes`` nodes (a trigger, then condition nodes with a true and a false action)."""
    items: list[dict[str, Any]] = [
        {
            "id": "start",
            "type": "trigger",
            "trigger": {"type": "manual", "target": {"connection": "app_db", "table": "orders"}},
        }
    ]
    connections: list[dict[str, Any]] = []
    check = 0
    while len(items) < nodes:
        check += 1
        condition = f"check-{check:03d}"
        items.append(
            {
                "id": condition,
                "type": "condition",
                "conditions": {"all": [{"field": "total", "operator": "gte", "value": check * 10}]},
            }
        )
        previous = {"from": "start"} if check == 1 else {"from": f"check-{check - 1:03d}", "when": "true"}
        connections.append({**previous, "to": condition})  # the items that passed go on to the next check
        for branch in ("true", "false"):
            if len(items) >= nodes:
                break
            action = f"{condition}-{branch}"
            items.append(
                {
                    "id": action,
                    "type": "action",
                    "action": {
                        "type": "update_record",
                        "connection": "app_db",
                        "table": "orders",
                        "values": {"note": f"{condition} {branch}"},
                    },
                }
            )
            connections.append({"from": condition, "to": action, "when": branch})
    for index, node in enumerate(items):
        node["position"] = {"x": (index % COLUMNS) * 220, "y": (index // COLUMNS) * 120}
    return {"title": "A big workflow", "owner": "bench", "nodes": items, "connections": connections}


def build_bare_flow(out: Path) -> Path:
    """Build the bare React Flow page into ``out``; the page's path. Needs ``ui/node_modules``."""
    npx = shutil.which("npx")
    if npx is None or not (UI / "node_modules" / "@xyflow" / "react").is_dir():
        fail("the bare React Flow page needs the UI's packages: run `cd ui && npm ci` first")
    subprocess.run(
        [
            npx,
            "vite",
            "build",
            "--config",
            "vite.bench.config.ts",
            "--outDir",
            str(out),
            "--logLevel",
            "warn",
        ],
        cwd=UI,
        check=True,
    )
    return out / "bare-flow.html"


BARE_TABLE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>bare definitions table</title></head>
<body><main><h1>Definitions</h1><table class="definitions"><thead><tr><th>Definition</th><th>State</th>
<th>Trigger</th><th>Owner</th><th>Last run</th><th>Last 14 days</th><th>Change</th></tr></thead>
<tbody></tbody></table></main>
<script>
const ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"};
const esc = (s) => String(s ?? "").replace(/[&<>"]/g, (c) => ENTITIES[c]);
const spark = (days) => {
  const step = 80 / Math.max(1, days.length - 1);
  const pts = days
    .map((d, i) => (d.success_rate === null ? null : `${2 + i * step},${2 + (1 - d.success_rate) * 16}`))
    .filter(Boolean)
    .join(" ");
  return `<svg width="84" height="20"><polyline fill="none" stroke="#1d4ed8" points="${pts}"/></svg>`;
};
const last = (run) => (run ? `${esc(run.status)} ${esc(run.started_at)}` : "never");
const row = (i) => `<tr><th scope="row"><a href="#">${esc(i.title)}</a> ${esc(i.kind)}
  <div>${esc(i.description)}</div></th><td>${esc(i.state)}</td><td>${esc(i.trigger)}</td>
  <td>${esc(i.owner)}</td><td>${last(i.last_run)}</td><td>${spark(i.days)} ${i.runs}</td>
  <td><button type="button">Deactivate</button></td></tr>`;
fetch("/automations/api/v1/definitions?limit=1000", { credentials: "same-origin" })
  .then((response) => response.json())
  .then((board) => { document.querySelector("tbody").innerHTML = board.items.map(row).join(""); });
</script></body></html>
"""

TABLE_READY = """
window.__ready = new Promise((resolve) => {
  const done = () => {
    if (document.querySelectorAll("table.definitions tbody tr").length < %d) return;
    observer.disconnect();
    requestAnimationFrame(() => setTimeout(() => resolve(performance.now()), 0));
  };
  const observer = new MutationObserver(done);
  observer.observe(document, { childList: true, subtree: true });
});
"""


FLOW_READY = """
window.__ready = new Promise((resolve) => {
  const done = () => {
    const drawn = document.querySelectorAll(".react-flow__node");
    if (drawn.length < %d || [...drawn].some((node) => node.style.visibility === "hidden")) return;
    observer.disconnect();
    requestAnimationFrame(() => setTimeout(() => resolve(performance.now()), 0));
  };
  const observer = new MutationObserver(done);
  const watched = { childList: true, subtree: true, attributes: true, attributeFilter: ["style"] };
  observer.observe(document, watched);
});
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def served(app: Any, bare_flow: Path) -> Iterator[str]:
    """The app under ``/automations``, the bare table at ``/bare`` and the bare React Flow page under
    ``/bare-flow/``, by uvicorn on a free loopback port."""
    import uvicorn
    from fastapi import FastAPI
    from fastapi.responses import HTMLResponse
    from fastapi.staticfiles import StaticFiles

    root = FastAPI()
    root.get("/bare", response_class=HTMLResponse)(lambda: BARE_TABLE)
    root.mount("/automations", app)
    root.mount("/bare-flow", StaticFiles(directory=bare_flow))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(root, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            fail("uvicorn did not start in 30 s")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def loads_of(
    browser: Any, base: str, token: str, *, ready: str, urls: dict[str, str], loads: int
) -> dict[str, Any]:
    """``loads`` timed loads of each of ``urls`` (after ``WARM_UP`` each), alternating their order."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_cookies([{"name": "_token", "value": token, "url": base}])
    context.add_init_script(ready)

    def load(url: str) -> float:
        page = context.new_page()
        try:
            page.set_default_timeout(60_000)
            page.goto(url, wait_until="commit")
            ready_ms: float = page.evaluate("() => window.__ready")
            return ready_ms / 1000
        finally:
            page.close()

    try:
        for _ in range(WARM_UP):
            for url in urls.values():
                load(url)
        times: dict[str, list[float]] = {side: [] for side in urls}
        for i in range(loads):
            order = list(urls.items()) if i % 2 == 0 else list(urls.items())[::-1]
            for side, url in order:
                times[side].append(load(url))
    finally:
        context.close()
    return compared(times["page"], times["bare"])


def bench_tti(
    app: Any, token: str, *, organization: str, definitions: int, loads: int, work: Path
) -> list[dict[str, Any]]:
    """Both cases: the definitions page and the designer, each against its bare page."""
    from playwright.sync_api import sync_playwright

    if not os.access(CHROMIUM, os.X_OK):
        fail(f"no Chromium at {CHROMIUM}: run scripts/ensure-chromium.sh")
    progress("building the bare React Flow page (ui/bench/, with ui/node_modules)")
    build_bare_flow(work / "bare-flow")
    with served(app, work / "bare-flow") as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            table = loads_of(
                browser,
                base,
                token,
                ready=TABLE_READY % definitions,
                urls={"page": f"{base}/automations/ui/?page=definitions", "bare": f"{base}/bare"},
                loads=loads,
            )
            progress(f"time to interactive: {loads} loads of the definitions page and its bare page")
            query = f"organization={organization}"  # as the definitions page links it
            stored = f"/automations/api/v1/workflows/{WORKFLOW}?{query}"
            flow = loads_of(
                browser,
                base,
                token,
                ready=FLOW_READY % NODES,
                urls={
                    "page": f"{base}/automations/ui/?page=designer&name={WORKFLOW}&{query}",
                    "bare": f"{base}/bare-flow/bare-flow.html?workflow={stored}",
                },
                loads=loads,
            )
            progress(f"time to interactive: {loads} loads of the designer and the bare React Flow page")
        finally:
            browser.close()
    return [
        {"case": f"definitions page, {definitions:,} definitions", **table},
        {"case": f"designer, a {NODES}-node workflow", **flow},
    ]
