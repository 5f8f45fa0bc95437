"""Deliver one notice to one recipient: preferences, the delivery record, sending.

Shared by the ``send_notification`` operator, the notifiers (failure notices) and the dispatcher.
The delivery is recorded *before* anything is sent (``sending``) and again after (``sent``,
``retrying`` or ``failed``), so a retry after a recorded ``sent`` never sends again. Email and
in-app notices follow the recipient's preferences (muted, quiet hours, daily digest); slack and
webhook notices go to a connection, not a person, and are always sent. An in-app notice is "sent"
by writing it to the recipient's inbox in the rule store (:func:`send_notice`); the other channels
go out through :class:`~rule_engine.channel_senders.ChannelSenders`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa

from rule_compiler.clock import utcnow
from rule_compiler.errors import PermanentActionError, RetryableActionError
from rule_compiler.runtime.preferences import Decision, decide
from rule_compiler.store.inbox import add_inbox_message
from rule_compiler.store.notifications import NotificationDelivery, finish_delivery, start_delivery
from rule_compiler.store.preferences import get_preferences
from rule_engine.channel_senders import ChannelSenders, Target

log = logging.getLogger(__name__)

#: Channels whose recipients are people with preferences.
PERSONAL_CHANNELS = frozenset({"email", "in_app"})
Outcome = Literal["sent", "already_sent", "muted", "deferred", "digest"]


@dataclass(frozen=True)
class Notice:
    """One rendered message for one recipient on one channel."""

    delivery: NotificationDelivery
    message: Mapping[str, Any]


def deliver(
    engine: sa.Engine,
    notice: Notice,
    senders: ChannelSenders,
    *,
    final_attempt: bool = True,
    now: dt.datetime | None = None,
) -> Outcome:
    """Apply preferences, record, send. Raises the sending error (already recorded as ``retrying``,
    or ``failed`` when ``final_attempt`` or permanent)."""
    moment = now or utcnow()
    target = notice.delivery
    decision: Decision = "send"
    when = None
    if target.channel in PERSONAL_CHANNELS:
        prefs = get_preferences(engine, target.organization, target.recipient)
        decision, when = decide(prefs, target.channel, moment)
    if decision != "send":
        queued = start_delivery(
            engine,
            target,
            now=moment,
            status=decision,
            message=None if decision == "muted" else dict(notice.message),
            deliver_after=when,
        )
        return "already_sent" if queued is None else decision
    # the rendered message is kept until it is sent: a failed delivery can be redelivered as it was
    attempt = start_delivery(engine, target, now=moment, status="sending", message=dict(notice.message))
    if attempt is None:
        return "already_sent"
    send_and_record(engine, senders, target, notice.message, final_attempt=final_attempt)
    return "sent"


def send_and_record(
    engine: sa.Engine,
    senders: ChannelSenders,
    target: Target,
    message: Mapping[str, Any],
    *,
    final_attempt: bool = True,
) -> None:
    """Send a delivery already recorded as ``sending`` and record how it ended; re-raise a failure."""
    key = target.idempotency_key
    try:
        send_notice(engine, senders, target, message)
    except PermanentActionError as exc:
        finish_delivery(engine, key, status="failed", now=utcnow(), error=describe(exc))
        raise
    except Exception as exc:  # timeouts, lost connections, 5xx, and anything unexpected
        status: Literal["retrying", "failed"] = "failed" if final_attempt else "retrying"
        finish_delivery(engine, key, status=status, now=utcnow(), error=describe(exc))
        if isinstance(exc, RetryableActionError):
            raise
        raise RetryableActionError(describe(exc)) from exc
    finish_delivery(engine, key, status="sent", now=utcnow())


def send_notice(
    engine: sa.Engine,
    senders: ChannelSenders,
    target: Target,
    message: Mapping[str, Any],
    *,
    now: dt.datetime | None = None,
) -> None:
    """Deliver ``message`` to ``target`` once, recording nothing about the delivery; raise on failure.

    ``in_app``: the message goes into the recipient's inbox (the rule store behind ``engine``), once
    per idempotency key, created ``now``; other channels: :meth:`ChannelSenders.send`.
    """
    if target.channel != "in_app":
        senders.send(target, message)
        return
    add_inbox_message(
        engine,
        idempotency_key=target.idempotency_key,
        organization=target.organization,
        recipient=target.recipient,
        rule_id=target.rule_id,
        subject=str(message.get("subject") or ""),
        body=str(message.get("body") or ""),
        now=now or utcnow(),
    )


def describe(exc: BaseException) -> str:
    """An error for records and logs: its kind and first line, bounded."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"[:500]
