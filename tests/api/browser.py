"""Driving our pages in Debian's Chromium through Playwright (never ``playwright install``: no browser is
downloaded): the browser, signing in on Airflow's login page, keyboard moves and axe-core checks, shared
by the end-to-end tests."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.conftest import ROOT, unavailable

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS") or ROOT / "test-artifacts")
#: axe-core, installed in ui/node_modules by `npm ci` (scripts/check-ui.sh runs before the tests).
AXE = ROOT / "ui" / "node_modules" / "axe-core" / "axe.min.js"


CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> Any:
    """Playwright's sync API, or a skip (a failure under CI=true) when it or the browser is missing."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:  # pragma: no cover - pinned in requirements-dev.txt
        unavailable(f"the playwright package is not installed ({exc}): run make venv")
    if not os.access(CHROMIUM, os.X_OK):
        unavailable(f"no Chromium at {CHROMIUM}: run scripts/ensure-chromium.sh (apt-get install chromium)")
    return sync_playwright


def sign_in(page: Any, base_url: str, next_path: str, username: str, password: str) -> None:
    """Sign in on Airflow's login page as a user does, and land on ``next_path``."""
    page.goto(f"{base_url}/auth/login/?next={next_path}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}{next_path}")


def accessibility_problems(page: Any) -> list[str]:
    """axe-core's serious and critical violations in the page's iframe, and a horizontal scroll at
    the viewport's width (the pages must reflow at 1280 and 768 px)."""
    frame = page.locator("iframe").element_handle().content_frame()  # our page, not Airflow's around it
    frame.evaluate(AXE.read_text())
    found = frame.evaluate(
        "async () => (await axe.run(document)).violations"
        ".map(v => [v.impact, v.id, v.help + ': ' + v.nodes.map(n => n.html).join(' ').slice(0, 200)])"
    )
    problems = [
        f"{impact}: {rule} ({text})" for impact, rule, text in found if impact in ("serious", "critical")
    ]
    if frame.evaluate("() => document.documentElement.scrollWidth > document.documentElement.clientWidth"):
        problems.append(f"horizontal scroll at {page.viewport_size['width']} px")
    return problems


def tab_to(page: Any, name: str, presses: int = 120) -> None:
    """Press Tab until the element named ``name`` in our frame has the focus (keyboard only); a name
    followed by a comma counts too (``trigger node start, 1 problem(s)``)."""
    frame = page.locator("iframe").element_handle().content_frame()
    for _ in range(presses):
        page.keyboard.press("Tab")
        focused = frame.evaluate(
            "() => { const e = document.activeElement; if (!e || e === document.body) return null;"
            " const own = (n) => Array.from(n.childNodes).filter((c) => c.nodeType === 3)"
            ".map((c) => c.textContent).join('');"  # a label's own words, not its select's options
            " const label = e.labels && e.labels.length ? own(e.labels[0]) : e.textContent;"
            " return (e.getAttribute('aria-label') || label || '').trim() }"
        )
        if focused == name or (focused or "").startswith(f"{name},"):
            return
    raise AssertionError(f"{name!r} is not reachable with Tab in {presses} presses")


@contextlib.contextmanager
def screenshot_on_failure(page: Any, name: str) -> Iterator[None]:
    """Keep a screenshot of the page, and the text of our frame, in the test artifacts when the block
    fails (then re-raise)."""
    try:
        yield
    except BaseException:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(Exception):
            page.screenshot(path=str(ARTIFACTS / f"failed-{name}.png"), full_page=True)
        with contextlib.suppress(Exception):  # our page's text: the problems the screenshot may cut off
            frame = page.locator("iframe").element_handle().content_frame()
            (ARTIFACTS / f"failed-{name}.txt").write_text(frame.locator("body").inner_text())
        raise
