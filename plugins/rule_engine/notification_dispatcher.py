"""The notification dispatcher: deferred messages whose quiet hours ended, and daily digests.

Run by the ``rule_engine_notifications`` DAG every five minutes, and callable directly (tests, a
one-off catch-up). A message that fails is recorded and the others continue:

- a deferred message is claimed (:func:`~rule_compiler.store.notifications.claim_due`: exactly one
  dispatcher gets it), sent, and recorded ``sent``; a retryable failure puts it back for a later
  run (up to :data:`MAX_DISPATCH_ATTEMPTS`, with doubling waits), a permanent one records ``failed``;
- the digest rows of a recipient and channel whose digest time has come become one email or one
  in-app message, itself recorded as a delivery (``rule_id`` :data:`DIGEST_RULE`) before and after
  sending, then the rows are marked ``digested``. The digest's key comes from the rows it holds, so
  a dispatcher that crashed after sending finds the digest ``sent`` and only marks the rows.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import Counter
from typing import Any

import sqlalchemy as sa

from rule_compiler.clock import utcnow
from rule_compiler.errors import PermanentActionError
from rule_compiler.runtime.dispatch_plan import build_digest, digest_key
from rule_compiler.store.notifications import (
    DigestBatch,
    NotificationDelivery,
    claim_due,
    digest_recipients,
    due_deliveries,
    finish_delivery,
    list_deliveries,
    mark_digested,
    requeue_delivery,
    start_delivery,
)
from rule_engine.channel_senders import DEFAULT_SMTP_CONNECTION, ChannelSenders
from rule_engine.notices import describe, send_and_record, send_notice

log = logging.getLogger(__name__)

#: Attempts of one deferred message before it is recorded ``failed``.
MAX_DISPATCH_ATTEMPTS = 5
#: Wait before the second attempt of a deferred message; doubles with each attempt.
FIRST_RETRY_WAIT = dt.timedelta(minutes=5)
#: Seconds one call spends sending (the DAG's tasks time out after four minutes).
DEFAULT_BUDGET_SECONDS = 180.0
#: A claimed deferred message still ``sending`` after this long was abandoned by its dispatcher.
STALE_CLAIM = dt.timedelta(minutes=30)
#: The ``rule_id`` and ``action_id`` of a digest's own delivery record.
DIGEST_RULE = "(digest)"
DIGEST_ACTION = "digest"


def dispatch_due(
    engine: sa.Engine,
    now: dt.datetime | None = None,
    *,
    senders: ChannelSenders | None = None,
    budget_seconds: float = DEFAULT_BUDGET_SECONDS,
) -> dict[str, int]:
    """Send every deferred message that is due at ``now``; counts per outcome.

    Stops claiming after ``budget_seconds``: what is left waits for the next run.
    """
    moment = now or utcnow()
    senders = senders or ChannelSenders()
    deadline = time.monotonic() + budget_seconds
    counts: Counter[str] = Counter()
    recovered = recover_stale_claims(engine, moment)
    if recovered:
        counts["recovered"] = recovered
    for row in due_deliveries(engine, moment):
        if time.monotonic() > deadline:
            counts["left_for_next_run"] += 1
            continue
        attempt = claim_due(engine, row.idempotency_key, moment)
        if attempt is None:
            counts["taken"] += 1  # another dispatcher got it first
            continue
        try:
            send_notice(engine, senders, row, row.message or {}, now=moment)
        except PermanentActionError as exc:
            finish_delivery(engine, row.idempotency_key, status="failed", now=moment, error=describe(exc))
            counts["failed"] += 1
            log.warning("deferred notice %s failed: %s", row.idempotency_key[:12], describe(exc))
            continue
        except Exception as exc:  # retryable or unexpected: try again later, a bounded number of times
            counts[_retry_later(engine, row.idempotency_key, attempt, moment, describe(exc))] += 1
            log.warning(
                "deferred notice %s (attempt %d): %s", row.idempotency_key[:12], attempt, describe(exc)
            )
            continue
        finish_delivery(engine, row.idempotency_key, status="sent", now=moment)
        counts["sent"] += 1
    return dict(counts)


def recover_stale_claims(engine: sa.Engine, now: dt.datetime) -> int:
    """Put back deferred messages a dispatcher claimed but never finished (it crashed mid-send).

    Email may then go out twice (with the same Message-ID); in-app messages land once by key.
    """
    recovered = 0
    for row in list_deliveries(engine, status="sending", limit=1_000):
        if row.deliver_after is not None and now - row.updated_at > STALE_CLAIM:
            error = "the dispatcher that claimed this message stopped before finishing it"
            recovered += requeue_delivery(
                engine, row.idempotency_key, deliver_after=now, now=now, error=error
            )
    return recovered


def _retry_later(engine: sa.Engine, key: str, attempt: int, now: dt.datetime, error: str) -> str:
    if attempt >= MAX_DISPATCH_ATTEMPTS:
        finish_delivery(engine, key, status="failed", now=now, error=error)
        return "failed"
    wait = FIRST_RETRY_WAIT * (2 ** (attempt - 1))
    if requeue_delivery(engine, key, deliver_after=now + wait, now=now, error=error):
        return "requeued"
    finish_delivery(engine, key, status="failed", now=now, error=error)
    return "failed"


def dispatch_digests(
    engine: sa.Engine,
    now: dt.datetime | None = None,
    *,
    senders: ChannelSenders | None = None,
    budget_seconds: float = DEFAULT_BUDGET_SECONDS,
) -> dict[str, int]:
    """Send one digest per recipient and channel whose digest time has come; counts per outcome."""
    moment = now or utcnow()
    senders = senders or ChannelSenders()
    deadline = time.monotonic() + budget_seconds
    counts: Counter[str] = Counter()
    for batch in digest_recipients(engine, moment):
        if time.monotonic() > deadline:
            counts["left_for_next_run"] += 1
            continue
        try:
            outcome = _send_digest(engine, senders, batch, moment)
        except Exception as exc:  # recorded on the digest's delivery; its rows wait for the next run
            counts["failed"] += 1
            log.warning("digest for a %s recipient failed: %s", batch.channel, describe(exc))
            continue
        counts[outcome] += 1
        counts["digested_messages"] += mark_digested(engine, batch.keys, moment)
    return dict(counts)


def _send_digest(engine: sa.Engine, senders: ChannelSenders, batch: DigestBatch, now: dt.datetime) -> str:
    key = digest_key(batch.organization, batch.recipient, batch.channel, batch.keys)
    due = max(row.deliver_after or now for row in batch.rows)
    delivery = NotificationDelivery(
        idempotency_key=key,
        organization=batch.organization,
        rule_id=DIGEST_RULE,
        action_id=DIGEST_ACTION,
        occurrence_id=due.astimezone(dt.UTC).isoformat(),
        row_key=None,
        channel=batch.channel,
        recipient=batch.recipient,
    )
    message: dict[str, Any] = {
        **build_digest(batch.rows, recipient=batch.recipient, now=now),
        "message_key": key,
        "connection": _digest_connection(batch),
    }
    if start_delivery(engine, delivery, now=now, status="sending", message=message) is None:
        return "already_sent"  # sent by an earlier run that stopped before marking the rows
    send_and_record(engine, senders, delivery, message)
    return "sent"


def _digest_connection(batch: DigestBatch) -> str | None:
    if batch.channel != "email":
        return None
    for row in batch.rows:
        connection = (row.message or {}).get("connection")
        if connection:
            return str(connection)
    return DEFAULT_SMTP_CONNECTION
