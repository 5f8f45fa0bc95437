"""``POST /{rule,workflow}-templates/{name}/expand``: a template's body with parameters in, the compiler's
own expansion (the same definition a ``use``/``with`` document stands for), parameter problems at
``with`` paths, 404 for an unknown template, and nothing stored."""

from __future__ import annotations

from typing import Any

import pytest

from rule_compiler.loading import read_definition_file
from rule_compiler.store import RuleStore
from tests.api.conftest import Api
from tests.conftest import ROOT

TEMPLATE = ROOT / "include" / "templates" / "follow-up-status.yaml"
RULE_TEMPLATE = ROOT / "include" / "rule-templates" / "notify-on-status.yaml"


def _stored(api: Api, path: str, file: Any) -> dict[str, Any]:
    data = read_definition_file(file)
    data.pop("organization")
    created = api.as_("ed").post(path, json=data)
    assert created.status_code == 201, created.text
    return data


def test_a_workflow_template_expands_to_the_workflow_it_stands_for(api: Api, store: RuleStore) -> None:
    _stored(api, "/workflow-templates", TEMPLATE)
    before = store.list(organization="acme", kind="workflow")
    answer = api.as_("vera").post(
        "/workflow-templates/follow-up-status/expand", json={"with": {"status": "shipped", "min_total": 500}}
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["template"], body["kind"]) == ("follow-up-status", "workflow")
    definition = body["definition"]
    assert definition["kind"] == "workflow" and "name" not in definition and "organization" not in definition
    condition = next(node for node in definition["nodes"] if node["id"] == "is-big")
    assert condition["conditions"]["all"] == [
        {"field": "status", "operator": "changed_to", "value": "shipped"},
        {"field": "total", "operator": "gte", "value": 500},
    ]
    tag = next(node for node in definition["nodes"] if node["id"] == "tag")
    assert tag["action"]["values"] == {"note": "follow up"}  # the parameter's default
    # the same as a workflow written with use/with and validated: it is valid as a workflow of its own
    checked = api.as_("ed").post("/workflows/validate", json={**definition, "name": "from-template"})
    assert checked.json()["valid"] is True, checked.text
    assert store.list(organization="acme", kind="workflow") == before  # nothing stored


def test_parameter_problems_are_at_with_paths_and_an_unknown_template_is_404(api: Api) -> None:
    _stored(api, "/workflow-templates", TEMPLATE)
    missing = api.as_("ed").post("/workflow-templates/follow-up-status/expand", json={})
    assert missing.status_code == 422
    assert [e["path"] for e in missing.json()["errors"]] == ["with"]
    wrong = api.as_("ed").post(
        "/workflow-templates/follow-up-status/expand",
        json={"with": {"status": "x", "min_total": "many", "nope": 1}},
    )
    assert wrong.status_code == 422
    assert sorted(e["path"] for e in wrong.json()["errors"]) == ["with.min_total", "with.nope"]
    assert api.as_("ed").post("/workflow-templates/no-such/expand", json={}).status_code == 404
    assert (
        api.as_("ed").post("/workflow-templates/follow-up-status/expand", json={"wiht": {}}).status_code
        == 422
    )


def test_a_rule_template_expands_too(api: Api) -> None:
    template = _stored(api, "/rule-templates", RULE_TEMPLATE)
    values = {
        name: 1 if spec["type"] in ("number", "integer") else "shipped"
        for name, spec in template["parameters"].items()
        if "default" not in spec
    }
    answer = api.as_("ed").post("/rule-templates/notify-on-status/expand", json={"with": values})
    assert answer.status_code == 200, answer.text
    assert answer.json()["kind"] == "rule" and "trigger" in answer.json()["definition"]


@pytest.mark.parametrize(("user", "expected"), [(None, 401), ("nomad", 403), ("vera", 404), ("root", 400)])
def test_expand_auth(api: Api, user: str | None, expected: int) -> None:
    assert api.as_(user).post("/workflow-templates/none-here/expand", json={}).status_code == expected
