"""The dispatcher's pure helpers: delivery and digest keys, the digest text."""

from __future__ import annotations

import datetime as dt

import pytest

from rule_compiler.runtime.dispatch_plan import MAX_DIGEST_BODY, build_digest, delivery_key, digest_key
from rule_compiler.runtime.idempotency import idempotency_key
from rule_compiler.store.notifications import DeliveryRow

NOW = dt.datetime(2026, 11, 21, 7, 0, tzinfo=dt.UTC)


def row(i: int, message: dict[str, str] | None, *, minutes: int = 0) -> DeliveryRow:
    created = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC) + dt.timedelta(minutes=minutes)
    return DeliveryRow(
        id=i, idempotency_key=f"{i:064x}", organization="acme", rule_id=f"rule-{i}", action_id="tell",
        occurrence_id="run-1", row_key=None, channel="email", recipient="ann@example.com", status="digest",
        attempts=0, message=message, deliver_after=NOW, error=None, created_at=created, updated_at=created,
        sent_at=None,
    )  # fmt: skip


def test_delivery_keys_differ_per_channel_and_recipient_and_are_stable() -> None:
    base = ("rule-1", "run-1", "tell", "[42]")
    email = delivery_key(*base, channel="email", recipient="ann@example.com")
    assert email == delivery_key(*base, channel="email", recipient="ann@example.com")
    assert len(email) == 64 and int(email, 16) >= 0
    others = {
        delivery_key(*base, channel="in_app", recipient="ann@example.com"),
        delivery_key(*base, channel="email", recipient="bob@example.com"),
        delivery_key("rule-1", "run-2", "tell", "[42]", channel="email", recipient="ann@example.com"),
        idempotency_key(*base),  # the action's own key is not any recipient's
    }
    assert email not in others and len(others) == 4


def test_digest_key_depends_on_the_set_of_rows_not_their_order() -> None:
    keys = [f"{i:064x}" for i in (1, 2, 3)]
    assert digest_key("acme", "ann", "email", keys) == digest_key("acme", "ann", "email", keys[::-1])
    assert digest_key("acme", "ann", "email", keys) != digest_key("acme", "ann", "in_app", keys)
    assert digest_key("acme", "ann", "email", keys) != digest_key("acme", "ann", "email", keys[:2])


def test_digest_lists_every_message_oldest_first() -> None:
    rows = [
        row(2, {"subject": "Order 7  is\nbig", "body": "Total 1,200 EUR.\n\nCustomer: VIP"}, minutes=30),
        row(1, {"subject": "Payment failed", "body": "Card declined."}),
        row(3, None, minutes=45),
    ]
    digest = build_digest(rows, recipient="ann@example.com", now=NOW)
    assert digest["subject"] == "Notification digest: 3 notifications"
    body = digest["body"]
    assert body.startswith("3 notifications for ann@example.com, as of 2026-11-21 07:00 UTC.\n")
    assert body.index("1. Payment failed") < body.index("2. Order 7 is big") < body.index("3. (no subject)")
    assert "   rule rule-2, 2026-11-20 09:30 UTC\n\n   Total 1,200 EUR.\n\n   Customer: VIP\n" in body


def test_digest_of_one_and_long_bodies_are_bounded() -> None:
    digest = build_digest(
        [row(1, {"subject": "s", "body": "x" * (MAX_DIGEST_BODY + 50)})], recipient="a", now=NOW
    )
    assert digest["subject"] == "Notification digest: 1 notification"
    assert "x" * MAX_DIGEST_BODY + "…" in digest["body"] and "x" * (MAX_DIGEST_BODY + 1) not in digest["body"]
    with pytest.raises(ValueError, match="at least one"):
        build_digest([], recipient="a", now=NOW)
