"""Ledger keys (issue 16): a workflow's keys name its kind; every rule key stays byte-identical.

The literal keys below were computed from the code before the kind was added to the material: if one
changes, every rule effect already recorded would happen again.
"""

from __future__ import annotations

from rule_compiler.runtime.dispatch_plan import delivery_key
from rule_compiler.runtime.idempotency import definition_part, idempotency_key

EVENT_KEY = ("acme/vip-order-follow-up", "event:42", "thank", "[7]")
RUN_KEY = ("acme/vip-order-follow-up", "manual__2026-01-01T00:00:00+00:00", "thank", None)


def test_rule_keys_are_unchanged() -> None:
    assert idempotency_key(*EVENT_KEY) == "16af278b658c7bbba3cd06d4f083afafd4955a6739732b6383087ac73a2ef646"
    assert idempotency_key(*RUN_KEY) == "2828ecbd17aa3d2f5d65efef711bbc0903ccd4b5d416fe18debed52fc6142045"
    assert idempotency_key(*EVENT_KEY, kind="rule") == idempotency_key(*EVENT_KEY)
    recipient = {"channel": "email", "recipient": "a@example.com"}
    assert (
        delivery_key(*EVENT_KEY, **recipient)
        == "d170c7fe54d9291495620866cf92edf4418455496fbc34623e4ed449185e9828"
    )


def test_a_workflow_with_the_same_name_and_ids_has_other_keys() -> None:
    workflow = idempotency_key(*EVENT_KEY, kind="workflow")
    assert workflow != idempotency_key(*EVENT_KEY)
    assert len(workflow) == 64 and workflow == idempotency_key(*EVENT_KEY, kind="workflow")
    assert idempotency_key(*RUN_KEY, kind="workflow") != idempotency_key(*RUN_KEY)
    recipient = {"channel": "email", "recipient": "a@example.com"}
    assert delivery_key(*EVENT_KEY, **recipient, kind="workflow") != delivery_key(*EVENT_KEY, **recipient)


def test_the_definition_part_names_every_kind_but_rule() -> None:
    assert definition_part("acme/x") == "acme/x"
    assert definition_part("acme/x", "workflow") == "workflow:acme/x"
