"""What a newcomer meets first: the API's index at ``/api/v1/``, the docs page and its files served by the
app (behind the login, nothing from a CDN), the 400 that names the organizations to choose from, and the
create example of docs/api.md, which must validate against the demo catalog and not collide with a
definition that ``make run`` loads."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import yaml
from rule_engine.api.docs_page import ASSETS

from rule_compiler.loading import expand_paths, read_definition_file
from rule_compiler.store import RuleStore
from tests.api.conftest import Api
from tests.conftest import ROOT

COLLECTIONS = {
    "rules",
    "condition-templates",
    "notification-templates",
    "rule-templates",
    "workflow-templates",
    "reports",
    "workflows",
    "logs",
    "analytics",
    "definitions",
    "audit",
    "approvals",
    "memberships",
    "catalog",
    "me",
    "health",
}


def test_the_api_root_is_an_index_with_absolute_links(api: Api) -> None:
    for path in ("/", ""):  # /api/v1/ (the README's URL) and /api/v1, without a redirect
        response = api.as_("nomad").get(path)  # signed in, no membership: still answers
        assert response.status_code == 200, (path, response.text)
        index = response.json()
        assert (index["name"], index["version"], index["username"]) == (
            "Automation rule engine",
            "1",
            "nomad",
        )
        assert index["docs"] == "http://testserver/docs"
        assert index["openapi"] == "http://testserver/openapi.json"
        assert index["events"] == "http://testserver/api/v1/events"
        assert set(index["collections"]) == COLLECTIONS
        assert index["collections"]["rules"] == "http://testserver/api/v1/rules"


def test_every_link_of_the_index_answers_an_admin(api: Api) -> None:
    index = api.as_("ada").get("/").json()
    admin = api.headers("ada")
    for name, url in [("docs", index["docs"]), ("openapi", index["openapi"]), *index["collections"].items()]:
        response = api.client.get(url, headers=admin)
        assert response.status_code == 200, (name, response.text)


def test_the_index_needs_a_login_and_is_in_the_schema(api: Api) -> None:
    assert api.as_(None).get("/").status_code == 401
    schema = api.as_("nomad").get("/openapi.json").json()
    assert schema["paths"]["/api/v1/"]["get"]["operationId"] == "index-api_index"
    assert "/api/v1" not in schema["paths"]


class _Urls(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in {"src", "href"} and value]


def test_the_docs_page_loads_everything_from_this_app(api: Api) -> None:
    page = api.as_("nomad").get("/docs")
    assert page.status_code == 200
    parser = _Urls()
    parser.feed(page.text)
    assert sorted(parser.urls) == sorted(f"/docs/assets/{name}" for name in ASSETS)
    assert "'/openapi.json'" in page.text
    assert '"validatorUrl": null' in page.text  # no schema URL sent to validator.swagger.io
    assert not re.search(r"https?://", page.text), "the page names another host"


def test_the_docs_files_are_served_to_signed_in_users_only(api: Api) -> None:
    for name, (_, media_type) in ASSETS.items():
        assert api.as_(None).get(f"/docs/assets/{name}").status_code == 401
        served = api.as_("nomad").get(f"/docs/assets/{name}")
        assert served.status_code == 200, name
        assert served.headers["content-type"] == media_type
        assert served.headers["cache-control"] == "private, max-age=3600"
        assert len(served.content) > 500
    assert b"SwaggerUIBundle" in api.as_("nomad").get("/docs/assets/swagger-ui-bundle.js").content
    missing = api.as_("nomad").get("/docs/assets/..%2Fcore.py")
    assert missing.status_code == 404
    assert api.as_("nomad").get("/docs/assets/index.html").status_code == 404


def test_a_platform_admin_without_membership_is_told_the_organizations(api: Api) -> None:
    response = api.as_("root").get("/rules")
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert "?organization=" in detail and "organizations: acme, globex" in detail


def test_with_no_organization_at_all_the_400_says_how_to_make_one(api: Api, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient
    from rule_engine.api import create_app
    from rule_engine.api.api_settings import ApiSettings

    empty = RuleStore(f"sqlite:///{tmp_path / 'empty.db'}")
    empty.upgrade()
    app = create_app(
        empty, settings=ApiSettings(rate_limit="", platform_admins=frozenset({"root"})), on_change=None
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/api/v1/rules", headers=api.headers("root"))
    empty.close()
    assert response.status_code == 400
    assert "there are none yet" in response.json()["detail"]


def test_a_member_of_several_organizations_is_told_which(api: Api, store: RuleStore) -> None:
    store.put_membership(organization="globex", username="vera", role="viewer", actor="setup")
    response = api.as_("vera").get("/logs")
    assert response.status_code == 400
    assert "(yours: acme, globex)" in response.json()["detail"]


def _docs_create_example() -> str:
    """The YAML rule that docs/api.md's create example posts (its first ``cat > ... <<'EOF'`` block)."""
    text = (ROOT / "docs" / "api.md").read_text()
    found = re.search(r"cat > /tmp/rule\.yaml <<'EOF'\n(.*?)\nEOF\n", text, re.DOTALL)
    assert found, "docs/api.md has no create example"
    return found.group(1)


def test_the_docs_create_example_is_new_to_the_demo_and_valid(api: Api) -> None:
    example = _docs_create_example()
    name = yaml.safe_load(example)["name"]
    demo = ["templates", "rules", "rules-using-templates", "reports"]
    loaded = {read_definition_file(p)["name"] for p in expand_paths([ROOT / "include" / d for d in demo])}
    assert name not in loaded, f"make run already loads '{name}': the example would answer 409"
    checked = api.as_("vera").post(
        "/rules/validate", content=example, headers={"Content-Type": "application/yaml"}
    )
    assert checked.status_code == 200
    assert checked.json()["valid"] is True, checked.json()["errors"]
    created = api.as_("ed").post("/rules", content=example, headers={"Content-Type": "application/yaml"})
    assert created.status_code == 201, created.text
    assert created.headers["Location"] == f"http://testserver/api/v1/rules/{name}"
