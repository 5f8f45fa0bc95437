"""What the notification dispatcher sends, without I/O: delivery keys and daily digests.

The dispatcher (an Airflow DAG on the plugin side) sends deferred messages once their quiet window
ends and, per recipient and channel, one digest of the messages gathered for the daily digest
(:func:`rule_compiler.store.notifications.digest_recipients`). The digest text is built here from
the rendered messages stored with each delivery (``{"subject": ..., "body": ...}``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence

from rule_compiler.canonical import canonical_json
from rule_compiler.runtime.idempotency import RULE_KIND, definition_part
from rule_compiler.store.notifications import DeliveryRow

#: Characters of one message's body kept in a digest (the digest stays readable and bounded).
MAX_DIGEST_BODY = 4_000


def delivery_key(
    rule_id: str,
    occurrence_id: str,
    action_id: str,
    row_key: str | None,
    *,
    channel: str,
    recipient: str,
    kind: str = RULE_KIND,
) -> str:
    """The idempotency key of one (effect, channel, recipient): 64 hex characters, stable across retries.

    ``kind``: the definition's kind, named in the key for every kind but rules (as in
    :func:`~rule_compiler.runtime.idempotency.idempotency_key`).
    """
    material = canonical_json(
        [definition_part(rule_id, kind), occurrence_id, action_id, row_key, channel, recipient]
    )
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


def digest_key(organization: str, recipient: str, channel: str, keys: Sequence[str]) -> str:
    """The idempotency key of one digest: the same rows give the same key (an inbox digest lands once)."""
    material = canonical_json(["digest", organization, recipient, channel, sorted(keys)])
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


def build_digest(rows: Sequence[DeliveryRow], *, recipient: str, now: dt.datetime) -> dict[str, str]:
    """One plain-text message listing each row's subject and body, oldest first.

    ``{"subject": "Notification digest: N notifications", "body": ...}``; ``now`` (UTC) dates it.
    """
    if not rows:
        raise ValueError("a digest needs at least one message")
    ordered = sorted(rows, key=lambda row: (row.created_at, row.id))
    count = len(ordered)
    noun = "notification" if count == 1 else "notifications"
    lines = [f"{count} {noun} for {recipient}, as of {now.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC.", ""]
    for index, row in enumerate(ordered, start=1):
        message = row.message or {}
        subject = " ".join(str(message.get("subject") or "(no subject)").split())
        body = str(message.get("body") or "").strip()
        if len(body) > MAX_DIGEST_BODY:
            body = body[:MAX_DIGEST_BODY] + "…"
        lines.append(f"{index}. {subject}")
        lines.append(f"   rule {row.rule_id}, {row.created_at.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC")
        if body:
            lines.extend(["", *(f"   {line}" if line else "" for line in body.splitlines())])
        lines.append("")
    return {"subject": f"Notification digest: {count} {noun}", "body": "\n".join(lines).rstrip() + "\n"}
