"""Send a failed notification delivery again: what ``rule-compiler notifications redeliver`` and
``POST /notifications/deliveries/{key}/redeliver`` share.

The message goes out exactly as it was rendered (the delivery row keeps it until it is sent), on its
channel, through the same senders as the task and the dispatcher (:mod:`rule_engine.notices`): an
email keeps its ``Message-ID`` (made from the delivery's key), an in-app message lands in the inbox
once per key. Only a ``failed`` or ``retrying`` delivery is sent again; a sent one never is. The
attempt is recorded on the delivery row like any other (attempts + 1, ``sent`` or ``failed``) and
audited with the actor.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from rule_compiler.clock import utcnow
from rule_compiler.errors import ActionError, NotFoundError, RefusedError
from rule_compiler.store import RuleStore
from rule_compiler.store.notifications import (
    REDELIVERABLE_STATUSES,
    DeliveryRow,
    claim_redelivery,
    get_delivery,
)
from rule_engine.channel_senders import ChannelSenders
from rule_engine.notices import describe, send_and_record


@dataclass(frozen=True)
class NotificationRedelivery:
    """How a redelivery went: the attempt number, whether it was sent, what the record now says."""

    key: str
    channel: str
    recipient: str
    attempt: int
    sent: bool
    status: str
    error: str | None


def prepare(engine: sa.Engine, key: str, *, organization: str | None = None) -> DeliveryRow:
    """The delivery row of ``key`` if it may be redelivered. NotFoundError: unknown (or another
    organization's); RefusedError: not failed or retrying (a sent one is never sent again), or recorded
    without its rendered message."""
    row = get_delivery(engine, key)
    if row is None or (organization is not None and row.organization != organization):
        where = "" if organization is None else f" in organization '{organization}'"
        raise NotFoundError(f"no notification delivery {key}{where}")
    if row.status not in REDELIVERABLE_STATUSES:
        raise RefusedError(
            f"notification delivery {key} is {row.status}: only "
            f"{' or '.join(REDELIVERABLE_STATUSES)} deliveries are sent again"
        )
    if row.message is None:
        raise RefusedError(
            f"notification delivery {key} kept no rendered message (it was recorded before messages were "
            "kept until sent): it cannot be sent again"
        )
    return row


def redeliver(
    store: RuleStore, row: DeliveryRow, *, actor: str, senders: ChannelSenders | None = None
) -> NotificationRedelivery:
    """Send the stored message of a row :func:`prepare` returned, record the attempt and audit it as
    ``actor``'s; RefusedError when another redelivery (or a retry) changed the row first."""
    engine = store.engine
    attempt = claim_redelivery(engine, row.idempotency_key, utcnow())
    if attempt is None:
        raise RefusedError(f"notification delivery {row.idempotency_key} changed meanwhile: look at it again")
    error: str | None = None
    try:
        send_and_record(engine, senders or ChannelSenders(), row, row.message or {})
    except ActionError as exc:  # recorded as retrying or failed by send_and_record
        error = describe(exc.__cause__ or exc)
    after = get_delivery(engine, row.idempotency_key)
    status = after.status if after is not None else "failed"
    store.record_audit(
        organization=row.organization,
        actor=actor,
        action="update",
        kind="notification_delivery",
        name=row.idempotency_key,
        version=None,
        detail={"redelivered": True, "attempt": attempt, "sent": error is None, "channel": row.channel},
    )
    return NotificationRedelivery(
        row.idempotency_key, row.channel, row.recipient, attempt, error is None, status, error
    )
