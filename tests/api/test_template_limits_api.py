"""Template bombs through the real app (issue 13, part 3): every literal attack on the sandbox is
refused at registration with its JSON path — a viewer's dry run answers ``valid: false``, an editor's
create answers 422 — and nothing is stored. The sandbox's side is tests/security/test_template_limits.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from rule_compiler.loading import read_definition_file
from rule_compiler.store import RuleStore
from tests.api.conftest import Api, rule_body
from tests.conftest import ROOT
from tests.security.test_template_limits import LITERAL_ATTACKS

#: The attacks of the issue, as reported by the attack run.
ISSUE_ATTACKS = [
    "{{ 'a' * 10**9 }}",
    "{{ 'a'|center(1000000000) }}",
    "{% for a in 'x'*100000 %}{% for b in 'x'*100000 %}{{ a }}{% endfor %}{% endfor %}",
    "{{ (['a']*10**8)|join }}",
    "{{ (['a']*10**8)|batch(1)|list }}",
]


def _errors(response: Any) -> list[tuple[str, str]]:
    return [(e["path"], e["code"]) for e in response.json()["errors"]]


def _rule_with_note(text: str) -> dict[str, Any]:
    body = rule_body("flag-big-paid-orders")
    body["actions"][0]["values"] = {"priority": "high", "note": text}
    return body


def _notification_template(body: str) -> dict[str, Any]:
    data = read_definition_file(ROOT / "include" / "templates" / "vip-order.yaml")
    data.pop("organization")
    data["channels"]["email"]["body"] = body
    return data


def test_every_issue_attack_is_also_in_the_sandbox_suite() -> None:
    assert set(ISSUE_ATTACKS) <= set(LITERAL_ATTACKS)


@pytest.mark.parametrize("text", ISSUE_ATTACKS)
def test_rule_validate_and_create_refuse_template_bombs_at_their_path(
    api: Api, store: RuleStore, text: str
) -> None:
    body = _rule_with_note(text)
    dry = api.as_("vera").post("/rules/validate", json=body)
    assert dry.status_code == 200, dry.text
    assert dry.json()["valid"] is False
    assert _errors(dry) == [("actions[0].values.note", "template")]
    [error] = dry.json()["errors"]
    assert "template limit max_" in error["message"]

    created = api.as_("ed").post("/rules", json=body)
    assert created.status_code == 422, created.text
    assert _errors(created) == [("actions[0].values.note", "template")]
    assert store.list() == []


@pytest.mark.parametrize("text", ISSUE_ATTACKS[:2])
def test_webhook_and_notification_bodies_are_checked_the_same_way(
    api: Api, store: RuleStore, text: str
) -> None:
    body = rule_body("flag-big-paid-orders")
    body["actions"] = [
        {"id": "tell", "type": "send_notification", "channel": "email", "to": ["a@example.com"],
         "subject": "hi", "body": text},
        {"id": "hook", "type": "call_webhook", "url": "https://hooks.example.com/x", "body": {"n": text}},
        {"id": "hook-url", "type": "call_webhook", "url": "https://hooks.example.com/" + text},
        {"id": "hook-path", "type": "call_webhook", "connection": "crm_api", "path": "/x/" + text},
    ]  # fmt: skip
    dry = api.as_("vera").post("/rules/validate", json=body)
    assert dry.status_code == 200 and dry.json()["valid"] is False
    assert ("actions[0].body", "template") in _errors(dry)
    assert ("actions[1].body.n", "template") in _errors(dry)
    assert ("actions[2].url", "template") in _errors(dry)
    assert ("actions[3].path", "template") in _errors(dry)
    assert store.list() == []


@pytest.mark.parametrize("text", ISSUE_ATTACKS)
def test_notification_template_validate_and_create_refuse_them(api: Api, store: RuleStore, text: str) -> None:
    body = _notification_template(text)
    dry = api.as_("vera").post("/notification-templates/validate", json=body)
    assert dry.status_code == 200, dry.text
    assert dry.json()["valid"] is False
    assert _errors(dry) == [("channels.email.body", "template")]

    created = api.as_("ed").post("/notification-templates", json=body)
    assert created.status_code == 422, created.text
    assert _errors(created) == [("channels.email.body", "template")]
    assert store.list() == []


def test_refused_features_name_themselves_in_the_answer(api: Api, store: RuleStore) -> None:
    dry = api.as_("vera").post(
        "/rules/validate", json=_rule_with_note("{% macro m() %}x{% endmacro %}{{ m() }}")
    )
    [error] = dry.json()["errors"]
    assert error["path"] == "actions[0].values.note"
    assert "{% macro %} is not allowed in templates" in error["message"]
    ok = api.as_("vera").post("/rules/validate", json=_rule_with_note("{{ rule.id|upper }} {{ 'x' * 3 }}"))
    assert ok.json()["valid"] is True, ok.text
