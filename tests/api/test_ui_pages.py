"""The pages Airflow's UI shows (rule_engine/api/ui_pages.py, ADR 0016): served from the committed bundle
only to a signed-in user (the ``_token`` cookie of Airflow's UI, or a bearer token), with a strict
content security policy; nothing outside the bundle's folder; and the plugin's UI entries valid under
Airflow's own model, since an invalid one silently drops the whole plugin from the UI."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from airflow.api_fastapi.core_api.datamodels.plugins import ExternalViewResponse
from fastapi.testclient import TestClient
from rule_engine.api.ui_pages import UI_DIST

from tests.api.conftest import Api


def test_the_page_needs_a_signed_in_user_and_accepts_airflows_cookie(
    api: Api, issue_token: Callable[[str], str]
) -> None:
    client: TestClient = api.client
    assert client.get("/ui/").status_code == 401
    client.cookies.set("_token", issue_token("ed"))
    page = client.get("/ui/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-cache"
    assert "frame-ancestors 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert '<div id="root"></div>' in page.text


def test_the_bundle_loads_from_relative_paths_and_is_cached_by_hash(api: Api) -> None:
    page = api.client.get("/ui/?page=overview", headers=api.headers("ed"))
    assets = re.findall(r'(?:src|href)="\./(assets/[^"]+)"', page.text)
    assert {a.rsplit(".", 1)[1] for a in assets} == {"js", "css"}  # relative: the page works under any prefix
    for asset in assets:
        served = api.client.get(f"/ui/{asset}", headers=api.headers("ed"))
        assert served.status_code == 200, asset
        assert served.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert served.headers["content-type"].split(";")[0] in {"text/javascript", "text/css"}
    assert "https://" not in "".join(
        api.client.get(f"/ui/{a}", headers=api.headers("ed")).text for a in assets if a.endswith(".html")
    )


@pytest.mark.parametrize(
    "path", ["../api/app.py", "..%2Fapi%2Fapp.py", "assets/../../ui_pages.py", "nothing.js"]
)
def test_nothing_outside_the_bundle_is_served(api: Api, path: str) -> None:
    assert api.client.get(f"/ui/{path}", headers=api.headers("ed")).status_code == 404


def test_the_bundle_loads_nothing_from_the_internet() -> None:
    for path in UI_DIST.rglob("*"):
        if path.suffix in {".html", ".css"}:
            assert not re.search(r"(?:src|href|url)\(?=?[\"']?https?://", path.read_text()), path


def test_the_plugins_ui_entries_are_valid_for_airflow() -> None:
    from rule_engine_plugin import RuleEnginePlugin

    views = [ExternalViewResponse.model_validate(view) for view in RuleEnginePlugin.external_views]
    assert [(v.name, v.destination, v.url_route, v.nav_top_level) for v in views] == [
        ("Automations", "nav", "automations", True),
        ("Automation", "dag", "automation", False),
        ("Automation", "dag_run", "automation-run", False),
    ]
    assert all(v.href.startswith("/automations/ui/") for v in views)
