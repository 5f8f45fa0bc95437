"""Definitions sent as YAML (``Content-Type: application/yaml``) over the real app: the same answers as
the same document in JSON, read by the CLI's safe loader after the size limit and authentication, with
anchors and aliases refused and the input guard's checks (NaN, NUL, depth) applied."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from rule_engine.api import yaml_bodies
from rule_engine.api.yaml_bodies import YAML_MEDIA_TYPES, YAML_OPERATIONS

from rule_compiler.store import RuleStore
from tests.api.conftest import RULES, Api, create, rule_body
from tests.conftest import DEMO_CATALOG, ROOT

YAML = {"Content-Type": "application/yaml"}
RULE_FILE = RULES / "flag-big-paid-orders.yaml"


def _errors(response: Any) -> list[tuple[str, str]]:
    return [(e["path"], e["code"]) for e in response.json()["errors"]]


def test_a_rule_file_posted_as_yaml_is_created_as_its_json_would_be(api: Api) -> None:
    created = api.as_("ed").post("/rules", content=RULE_FILE.read_bytes(), headers=YAML)
    assert created.status_code == 201, created.text
    assert created.headers["ETag"] and created.json()["dag_id"] == "rule__acme__flag-big-paid-orders"
    as_json = api.as_("gina").post("/rules", json=rule_body())  # the same rule in JSON, in globex
    assert as_json.status_code == 201, as_json.text
    from_yaml = api.as_("ed").get("/rules/flag-big-paid-orders").json()["definition"]
    from_json = api.as_("gina").get("/rules/flag-big-paid-orders").json()["definition"]
    assert {**from_yaml, "organization": "globex"} == from_json


@pytest.mark.parametrize("media_type", [*YAML_MEDIA_TYPES, "application/yaml; charset=utf-8"])
def test_every_yaml_media_type_validates(api: Api, media_type: str) -> None:
    text = (RULES / "escalate-vip-orders.yaml").read_text()
    response = api.as_("vera").post("/rules/validate", content=text, headers={"Content-Type": media_type})
    assert response.status_code == 200, response.text
    assert response.json()["valid"] is True
    assert response.json()["dag_id"] == "rule__acme__escalate-vip-orders"


def test_validate_reports_problems_at_their_paths_as_for_json(api: Api) -> None:
    text = RULE_FILE.read_text().replace("gte, value: 1000", "gte, value: 1000, colour: red")
    response = api.as_("vera").post("/rules/validate", content=text, headers=YAML)
    assert response.status_code == 200
    assert response.json()["valid"] is False
    assert [(e["path"], e["code"]) for e in response.json()["errors"]] == [
        ("conditions.all[1].colour", "unknown_key")
    ]


def test_replace_takes_yaml_with_if_match(api: Api) -> None:
    etag = create(api).headers["ETag"]
    text = RULE_FILE.read_text().replace("as high priority.", "as high priority (from YAML).")
    replaced = api.as_("ed").put(
        "/rules/flag-big-paid-orders", content=text, headers={**YAML, "If-Match": etag}
    )
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["definition"]["description"].endswith("(from YAML).")
    assert replaced.json()["version"] == 2


def test_templates_reports_and_the_catalog_take_yaml(api: Api) -> None:
    template = (ROOT / "include" / "templates" / "big-order.yaml").read_bytes()
    created = api.as_("ed").post("/condition-templates", content=template, headers=YAML)
    assert created.status_code == 201, created.text
    report = (ROOT / "include" / "reports" / "weekly-sales.yaml").read_text()
    report = report.replace("    sql_file: weekly_sales.sql\n", "    sql: SELECT 1 AS day, 2 AS revenue\n")
    checked = api.as_("vera").post("/reports/validate", content=report, headers=YAML)
    assert checked.status_code == 200, checked.text
    assert checked.json()["errors"] == [] and checked.json()["valid"] is True
    catalog = DEMO_CATALOG.read_text().replace(
        "region: {type: text}", "region: {type: text}\n          vat_id: {type: text}"
    )
    replaced = api.as_("ada").put("/catalog", content=catalog, headers=YAML)
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["changed"] is True


def test_yaml_dates_become_iso_strings(api: Api) -> None:
    text = RULE_FILE.read_text().replace(
        "description: On demand, mark every paid order of 1,000 or more as high priority.",
        "description: 2026-11-24",
    )
    created = api.as_("ed").post("/rules", content=text, headers=YAML)
    assert created.status_code == 201, created.text
    assert created.json()["definition"]["description"] == "2026-11-24"


@pytest.mark.parametrize(
    "text",
    [
        # an anchor and its alias
        "kind: rule\nname: a\nvalues: &v {priority: high}\nmore: *v\n",
        # an anchor alone
        "kind: rule\nname: &n a\n",
        # a merge key (an alias underneath)
        "kind: rule\nbase: &b {x: 1}\nother:\n  <<: *b\n",
    ],
)
def test_anchors_and_aliases_are_422(api: Api, text: str, store: RuleStore) -> None:
    response = api.as_("ed").post("/rules", content=text, headers=YAML)
    assert response.status_code == 422, response.text
    assert _errors(response) == [("(document)", "yaml_alias")]
    assert "line" in response.json()["errors"][0]["message"]
    assert store.list() == []


def test_a_billion_laughs_is_refused_at_once(api: Api) -> None:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    tracemalloc.start()
    try:
        response = api.as_("vera").post("/rules/validate", content="\n".join(lines), headers=YAML)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 422
    assert _errors(response) == [("(document)", "yaml_alias")]
    assert peak < 20 * 1024 * 1024, peak  # built out, the document would be 9**10 strings


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("kind: rule\nname: [unclosed\n", [("(document)", "yaml_invalid")]),
        ("kind: rule\nname: a\nname: b\n", [("(document)", "yaml_invalid")]),
        ("kind: !!python/object/apply:os.system ['true']\n", [("(document)", "yaml_invalid")]),
        ("- kind: rule\n", [("(document)", "yaml_invalid")]),
        ("kind: rule\n---\nkind: rule\n", [("(document)", "yaml_invalid")]),
        ("kind: rule\nname: !!binary aGVsbG8=\n", [("(document)", "yaml_not_json")]),
        (
            "kind: rule\nname: x\nactions: [{values: {total: .nan}}]\n",
            [("actions[0].values.total", "not_finite")],
        ),
        ('kind: rule\nname: "a\\0b"\n', [("name", "nul_character")]),
        ('kind: rule\nname: "\\ud800"\n', [("name", "invalid_unicode")]),
        ("a: " + "[" * 70 + "]" * 70 + "\n", [("(document)", "too_deep")]),
        ("a: " + "[" * 5000 + "]" * 5000 + "\n", [("(document)", "too_deep")]),
    ],
)
def test_malformed_yaml_is_422_at_its_path(api: Api, text: str, expected: list[tuple[str, str]]) -> None:
    response = api.as_("ed").post("/rules", content=text.encode("utf-8", "surrogatepass"), headers=YAML)
    assert response.status_code == 422, response.text
    assert _errors(response) == expected


def test_the_syntax_error_names_its_line(api: Api) -> None:
    response = api.as_("ed").post("/rules", content="kind: rule\nname: a\nname: b\n", headers=YAML)
    [error] = response.json()["errors"]
    assert "duplicate key 'name'" in error["message"] and "(line 3)" in error["message"]


def test_a_body_that_is_not_utf8_is_422(api: Api) -> None:
    response = api.as_("ed").post("/rules", content="name: caf\u00e9\n".encode("latin-1"), headers=YAML)
    assert response.status_code == 422
    assert _errors(response) == [("(document)", "yaml_invalid")]


@pytest.fixture
def parsed(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every YAML body the app parses (the loader is wrapped, not replaced)."""
    seen: list[bytes] = []
    real = yaml_bodies.yaml_to_json

    def recording(raw: bytes) -> bytes:
        seen.append(raw)
        return real(raw)

    monkeypatch.setattr(yaml_bodies, "yaml_to_json", recording)
    return seen


def test_a_yaml_body_over_the_cap_is_413_and_never_parsed(
    make_app: Callable[..., FastAPI], issue_token: Callable[[str], str], parsed: list[bytes]
) -> None:
    headers = {**YAML, "Authorization": f"Bearer {issue_token('ed')}"}
    big = RULE_FILE.read_text() + "# " + "x" * 20_000 + "\n"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        for start in range(0, len(big), 1000):
            yield big[start : start + 1000].encode()

    with TestClient(make_app(max_body_bytes=10_000), raise_server_exceptions=False) as client:
        declared = client.post("/api/v1/rules", content=big, headers=headers)
        streamed = client.post("/api/v1/rules", content=chunks(), headers=headers)
        small = client.post("/api/v1/rules/validate", content=RULE_FILE.read_bytes(), headers=headers)
    assert declared.status_code == 413, declared.text
    assert "larger than 10000 bytes" in declared.json()["detail"]
    assert streamed.status_code == 413, streamed.text
    assert small.status_code == 200 and small.json()["valid"] is True
    assert parsed == [RULE_FILE.read_bytes()]  # only the body under the cap was parsed


def test_the_default_cap_applies_to_yaml(api: Api) -> None:
    big = RULE_FILE.read_text() + "# " + "x" * (1024 * 1024) + "\n"
    assert api.as_("ed").post("/rules", content=big, headers=YAML).status_code == 413


def test_a_yaml_body_over_the_loaders_limit_is_413_before_parsing(api: Api, parsed: list[bytes]) -> None:
    big = RULE_FILE.read_text() + "# " + "x" * 1_000_000 + "\n"  # under the 1 MiB body cap
    response = api.as_("ed").post("/rules", content=big, headers=YAML)
    assert response.status_code == 413
    assert "at most 1000000 bytes" in response.json()["detail"]
    assert len(parsed) == 1  # handed to the reader, which refused it on its size alone


def test_anonymous_yaml_is_401_and_never_parsed(api: Api, parsed: list[bytes]) -> None:
    anonymous = api.as_(None).post("/rules", content=RULE_FILE.read_bytes(), headers=YAML)
    forged = api.as_(None).post(
        "/rules/validate", content=RULE_FILE.read_bytes(), headers={**YAML, "Authorization": "Bearer x.y.z"}
    )
    assert (anonymous.status_code, forged.status_code) == (401, 403)
    assert parsed == []


def test_a_viewer_posting_yaml_is_still_403(api: Api, store: RuleStore) -> None:
    response = api.as_("vera").post("/rules", content=RULE_FILE.read_bytes(), headers=YAML)
    assert response.status_code == 403
    assert store.list() == []


def test_the_schema_documents_yaml_beside_json_on_those_operations(api: Api) -> None:
    schema = api.as_("nomad").get("/openapi.json").json()
    with_yaml = set()
    for path_item in schema["paths"].values():
        for operation in path_item.values():
            content = operation.get("requestBody", {}).get("content", {})
            if "application/yaml" in content:
                with_yaml.add(operation["operationId"])
                assert content["application/yaml"] == content["application/json"]
    assert with_yaml == YAML_OPERATIONS
    assert len(YAML_OPERATIONS) == 3 * 7 + 1  # create, replace, validate of the seven kinds; the catalog
