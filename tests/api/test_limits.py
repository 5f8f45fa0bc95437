"""Bad input answers 4xx with a precise body, never 500: huge bodies, invalid JSON, wrong types,
unknown fields; too many requests answer 429 with Retry-After."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

from fastapi import FastAPI
from fastapi.testclient import TestClient

from rule_compiler.store import RuleStore
from tests.api.conftest import Api, create, rule_body


def test_a_body_over_the_cap_is_413_before_anything_is_read(api: Api, store: RuleStore) -> None:
    big = rule_body(description="x" * (1024 * 1024 + 1))
    response = api.as_("ed").post("/rules", json=big)
    assert response.status_code == 413
    assert "larger than 1048576 bytes" in response.json()["detail"]
    assert store.list() == []


def test_a_streamed_body_over_the_cap_is_413(
    make_app: Callable[..., FastAPI], issue_token: Callable[[str], str], store: RuleStore
) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: the middleware counts what arrives
        yield b'{"description": "'
        for _ in range(20):
            yield b"x" * 1000
        yield b'"}'

    with TestClient(make_app(max_body_bytes=10_000), raise_server_exceptions=False) as client:
        response = client.post(
            "/api/v1/rules",
            content=chunks(),
            headers={"Authorization": f"Bearer {issue_token('ed')}", "Content-Type": "application/json"},
        )
    assert response.status_code == 413
    assert store.list() == []


def test_invalid_json_is_422_at_the_document(api: Api) -> None:
    response = api.as_("ed").post(
        "/rules", content=b'{"name": "x",', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert (error["path"], error["code"]) == ("(document)", "json_invalid")


def test_a_body_that_is_not_an_object_is_422(api: Api) -> None:
    for body in ([1, 2], "rule", 3, None):
        response = api.as_("ed").post(
            "/rules", content=json.dumps(body), headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 422, body
        assert response.json()["errors"], body


def test_wrong_types_and_unknown_fields_are_422_with_paths(api: Api) -> None:
    body = rule_body(active="sometimes", colour="red")
    body["actions"][0]["values"] = "priority=high"
    response = api.as_("ed").post("/rules", json=body)
    assert response.status_code == 422
    paths = {(e["path"], e["code"]) for e in response.json()["errors"]}
    assert ("colour", "unknown_key") in paths
    assert "active" in {p for p, _ in paths}
    assert "actions[0].values" in {p for p, _ in paths}


def test_wrong_query_types_are_422(api: Api) -> None:
    vera = api.as_("vera")
    for params in (
        {"limit": "many"},
        {"limit": 0},
        {"offset": -1},
        {"active": "perhaps"},
        {"sort": "random"},
    ):
        response = vera.get("/rules", params=params)
        assert response.status_code == 422, params
        assert response.json()["errors"][0]["path"].startswith("query."), response.text
    assert vera.get("/logs/not-a-number").json()["errors"][0]["path"] == "path.log_id"


def test_patch_with_a_non_json_content_type_is_422(api: Api) -> None:
    etag = create(api).headers["ETag"]
    response = api.as_("ed").patch(
        "/rules/flag-big-paid-orders",
        content=b"active=false",
        headers={"If-Match": etag, "Content-Type": "text/plain"},
    )
    assert response.status_code == 422


def test_rate_limit_answers_429_with_retry_after_per_user(
    make_app: Callable[..., FastAPI], issue_token: Callable[[str], str]
) -> None:
    with TestClient(make_app(rate_limit="3/minute"), raise_server_exceptions=False) as client:
        vera = {"Authorization": f"Bearer {issue_token('vera')}"}
        codes = [client.get("/api/v1/rules", headers=vera).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        limited = client.get("/api/v1/rules", headers=vera)
        assert limited.status_code == 429
        assert 1 <= int(limited.headers["Retry-After"]) <= 60
        assert "too many requests" in limited.json()["detail"]
        ed = {"Authorization": f"Bearer {issue_token('ed')}"}
        assert client.get("/api/v1/rules", headers=ed).status_code == 200  # another user has their own budget
        assert client.get("/api/v1/rules").status_code == 401  # anonymous: refused before counting
