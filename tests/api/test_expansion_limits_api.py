"""Expansion bombs and oversized specs through the real app (issue 13, part 2): a viewer's dry run and
an editor's create answer quickly, with the problem at the ``use``, and store nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rule_compiler.canonical import MAX_SPEC_BYTES, canonical_json, content_hash
from rule_compiler.compiler import COMPILER_VERSION
from rule_compiler.errors import NotFoundError
from rule_compiler.store import DefinitionWrite, RuleStore
from tests.api.conftest import Api
from tests.security.test_expansion_limits import (
    ORG,
    big_webhook_rule,
    bomb_templates,
    expander_calls,
    rule_doc,
)

__all__ = ["expander_calls"]  # the fixture, used here


def store_templates_unchecked(store: RuleStore, docs: dict[str, dict[str, Any]]) -> None:
    """Templates written straight to the store, as before the limit (the API refuses t2 and t3 now)."""
    for name, doc in docs.items():
        store.apply(
            DefinitionWrite(
                organization=ORG,
                kind="condition_template",
                name=name,
                dag_id=f"condition_template__{ORG}__{name}",
                source=doc,
                source_hash=content_hash(doc),
                spec_json=canonical_json(doc),
                spec_hash=content_hash(doc),
                active=True,
                actor="setup",
                compiler_version=COMPILER_VERSION,
            )
        )


def test_api_viewer_validate_and_create_refuse_the_bomb_without_expanding(
    api: Api, store: RuleStore, expander_calls: list[str]
) -> None:
    store_templates_unchecked(store, bomb_templates())
    body = rule_doc({"use": "t3"}, organization=False)
    assert len(json.dumps(body)) < 400

    response = api.as_("vera").post("/rules/validate", json=body)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["valid"] is False
    assert [(e["path"], e["code"]) for e in result["errors"]] == [("conditions.use", "too_many_conditions")]

    response = api.as_("ed").post("/rules", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["path"] == "conditions.use"
    with pytest.raises(NotFoundError):
        store.get(organization=ORG, kind="rule", name="bomb")
    assert expander_calls == []


def test_api_refuses_a_template_that_expands_too_far(api: Api, store: RuleStore) -> None:
    docs = {
        name: {k: v for k, v in doc.items() if k != "organization"} for name, doc in bomb_templates().items()
    }
    ed = api.as_("ed")
    assert ed.post("/condition-templates", json=docs["t1"]).status_code == 201
    response = ed.post("/condition-templates", json=docs["t2"])
    assert response.status_code == 422, response.text
    assert [(e["path"], e["code"]) for e in response.json()["errors"]] == [
        ("condition.all[0].any[0].use", "too_many_conditions")
    ]
    with pytest.raises(NotFoundError):
        store.get(organization=ORG, kind="condition_template", name="t2")


def test_api_refuses_an_oversized_spec_and_stores_nothing(api: Api, store: RuleStore) -> None:
    body = big_webhook_rule(MAX_SPEC_BYTES)
    body.pop("organization")
    response = api.as_("ed").post("/rules", json=body)
    assert response.status_code == 422, response.text
    assert [(e["path"], e["code"]) for e in response.json()["errors"]] == [("(document)", "spec_too_large")]
    with pytest.raises(NotFoundError):
        store.get(organization=ORG, kind="rule", name="bomb")
