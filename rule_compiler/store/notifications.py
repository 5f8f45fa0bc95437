"""Notification delivery records in the rule store (the inbox and preferences have their own modules).

One ``notification_deliveries`` row per (effect, channel, recipient), keyed by its idempotency key,
is written *before* anything is sent (docs/architecture.md §3.5) and counts every attempt:

- ``sending`` → ``sent`` | ``retrying`` | ``failed`` for a message sent now;
- ``muted``: a preference muted the channel (recorded for analytics, never sent);
- ``deferred`` until ``deliver_after`` (quiet hours): the dispatcher claims it (:func:`claim_due`),
  sends it and finishes it, or puts it back (:func:`requeue_delivery`);
- ``digest`` until the recipient's digest time, then ``digested`` once the digest went out.

Once a row is queued (``deliver_after`` set) the dispatcher owns it: a retried task never sends or
queues it again. The rendered message is kept only until it is sent (while it waits, and after a
failed attempt, so that :func:`claim_redelivery` can send it again). Each function is one short
transaction on an engine (the rule store's), safe on SQLite and Postgres; concurrent writers of one
key meet at its unique constraint (``INSERT ... ON CONFLICT DO NOTHING``), never at an exception.
Database failures raise the store's :class:`~rule_compiler.errors.StoreError` family.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa

from rule_compiler.definitions.action_types import NOTIFICATION_CHANNELS
from rule_compiler.store import rollups
from rule_compiler.store._bookkeeping import check_key, check_page, transaction
from rule_compiler.store._json import loads, log_json
from rule_compiler.store.preferences import MAX_RECIPIENT
from rule_compiler.store.runs import upsert
from rule_compiler.store.tables import DELIVERY_STATUSES
from rule_compiler.store.tables import notification_deliveries as d

StartStatus = Literal["sending", "muted", "deferred", "digest"]
FinishStatus = Literal["sent", "retrying", "failed"]
#: Statuses after which a retried task neither sends nor queues again.
FINAL_STATUSES = frozenset({"sent", "muted", "digested"})


@contextmanager
def _counted(conn: sa.Connection, where: sa.ColumnElement[bool]) -> Iterator[None]:
    """Around a change of the rows ``where`` selects: add what it changes to the analytics rollups
    (``rollups.delivery_share``), in the same transaction."""
    before = rollups.delivery_rows(conn, where)
    yield
    after = rollups.delivery_rows(conn, where)
    rollups.apply(conn, rollups.deliveries_share(before), rollups.deliveries_share(after))


MAX_ERROR = 2_000


@dataclass(frozen=True)
class NotificationDelivery:
    """The identity of one delivery: (effect, channel, recipient)."""

    idempotency_key: str
    organization: str
    rule_id: str
    action_id: str
    occurrence_id: str
    row_key: str | None
    channel: str
    recipient: str


@dataclass(frozen=True)
class DeliveryRow:
    """A ``notification_deliveries`` row; ``message`` is the stored rendered message (while it waits)."""

    id: int
    idempotency_key: str
    organization: str
    rule_id: str
    action_id: str
    occurrence_id: str
    row_key: str | None
    channel: str
    recipient: str
    status: str
    attempts: int
    message: dict[str, Any] | None
    deliver_after: dt.datetime | None
    error: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    sent_at: dt.datetime | None

    @property
    def delivery(self) -> NotificationDelivery:
        """The row's identity, as :func:`start_delivery` takes it."""
        return NotificationDelivery(
            idempotency_key=self.idempotency_key,
            organization=self.organization,
            rule_id=self.rule_id,
            action_id=self.action_id,
            occurrence_id=self.occurrence_id,
            row_key=self.row_key,
            channel=self.channel,
            recipient=self.recipient,
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields (times as ISO 8601)."""
        return {
            name: value.isoformat() if isinstance(value, dt.datetime) else value
            for name, value in self.__dict__.items()
        }


@dataclass(frozen=True)
class DigestBatch:
    """The digest rows of one recipient on one channel whose digest time has come, oldest first."""

    organization: str
    recipient: str
    channel: str
    rows: tuple[DeliveryRow, ...]

    @property
    def keys(self) -> list[str]:
        """The rows' idempotency keys (what :func:`mark_digested` takes)."""
        return [row.idempotency_key for row in self.rows]


# --- deliveries ----------------------------------------------------------------------------------


def start_delivery(
    engine: sa.Engine,
    delivery: NotificationDelivery,
    *,
    now: dt.datetime,
    status: StartStatus = "sending",
    message: Mapping[str, Any] | None = None,
    deliver_after: dt.datetime | None = None,
) -> int | None:
    """Record a delivery before anything is sent.

    ``sending``: returns the attempt number (1, 2, ... across retries). ``muted``, ``deferred``,
    ``digest``: stores ``message`` (and ``deliver_after``, required for the last two) and returns 0.
    None when the key is final (sent, muted, digested) or already queued (deferred or digest, also
    once the dispatcher took it): the caller must neither send nor queue it.
    """
    _check_delivery(delivery)
    if status not in ("sending", "muted", "deferred", "digest"):
        raise ValueError(f"start_delivery status must be sending, muted, deferred or digest, not {status!r}")
    if status in ("deferred", "digest") and (deliver_after is None or message is None):
        raise ValueError(f"a {status} delivery needs the rendered message and deliver_after")
    queued_at = deliver_after if status in ("deferred", "digest") else None
    attempts = 1 if status == "sending" else 0
    values: dict[str, Any] = {"status": status, "updated_at": now, "error": None, "deliver_after": queued_at}
    if message is not None:
        values["message_json"] = log_json(dict(message))
    with (
        transaction(engine, write=True) as conn,
        _counted(conn, d.c.idempotency_key == delivery.idempotency_key),
    ):
        inserted = conn.execute(
            upsert(conn, d)
            .values(
                idempotency_key=delivery.idempotency_key,
                organization=delivery.organization,
                rule_id=delivery.rule_id,
                action_id=delivery.action_id,
                occurrence_id=delivery.occurrence_id,
                row_key=delivery.row_key,
                channel=delivery.channel,
                recipient=delivery.recipient,
                attempts=attempts,
                created_at=now,
                **values,
            )
            .on_conflict_do_nothing(index_elements=[d.c.idempotency_key])
        ).rowcount
        if inserted:
            return attempts
        row = conn.execute(
            sa.select(d.c.status, d.c.attempts, d.c.deliver_after)
            .where(d.c.idempotency_key == delivery.idempotency_key)
            .with_for_update()
        ).one()
        if row.status in FINAL_STATUSES or row.deliver_after is not None:
            return None
        # sending (a crashed or concurrent attempt), retrying or failed: one more attempt, or queue it.
        attempts = int(row.attempts) + 1 if status == "sending" else 0
        if status == "sending":
            values["attempts"] = attempts
        conn.execute(d.update().where(d.c.idempotency_key == delivery.idempotency_key).values(**values))
        return attempts


def finish_delivery(
    engine: sa.Engine, key: str, *, status: FinishStatus, now: dt.datetime, error: str | None = None
) -> None:
    """Record how an attempt ended; ``sent`` stamps ``sent_at`` and drops the stored message.

    Only a row that is being sent (``sending``, ``retrying``, ``failed``) changes: a finished or
    queued one is never turned back.
    """
    if status not in ("sent", "retrying", "failed"):
        raise ValueError(f"finish_delivery status must be sent, retrying or failed, not {status!r}")
    values: dict[str, Any] = {"status": status, "updated_at": now, "error": _truncate(error)}
    if status == "sent":
        values.update(sent_at=now, message_json=None, error=None)
    with transaction(engine, write=True) as conn, _counted(conn, d.c.idempotency_key == key):
        conn.execute(
            d.update()
            .where(d.c.idempotency_key == key, d.c.status.in_(("sending", "retrying", "failed")))
            .values(**values)
        )


#: Statuses a delivery may be redelivered from (``rule-compiler notifications redeliver``).
REDELIVERABLE_STATUSES = ("failed", "retrying")


def claim_redelivery(engine: sa.Engine, key: str, now: dt.datetime) -> int | None:
    """Move a ``failed`` or ``retrying`` row that kept its rendered message to ``sending`` for one more
    attempt (a redelivery) and return its attempt number; None when it is in another state or has no
    message. One conditional UPDATE: of two redeliveries racing for a row exactly one gets it."""
    with transaction(engine, write=True) as conn, _counted(conn, d.c.idempotency_key == key):
        claimed = conn.execute(
            d.update()
            .where(
                d.c.idempotency_key == key,
                d.c.status.in_(REDELIVERABLE_STATUSES),
                d.c.message_json.is_not(None),
            )
            .values(status="sending", attempts=d.c.attempts + 1, updated_at=now)
        ).rowcount
        if not claimed:
            return None
        return int(conn.execute(sa.select(d.c.attempts).where(d.c.idempotency_key == key)).scalar_one())


def due_deliveries(engine: sa.Engine, now: dt.datetime, *, limit: int = 500) -> list[DeliveryRow]:
    """``deferred`` rows whose ``deliver_after`` has come, oldest first."""
    check_page(limit, 0)
    query = (
        sa.select(d)
        .where(d.c.status == "deferred", d.c.deliver_after <= now)
        .order_by(d.c.deliver_after, d.c.id)
        .limit(limit)
    )
    with transaction(engine) as conn:
        return [_delivery_row(row) for row in conn.execute(query)]


def claim_due(engine: sa.Engine, key: str, now: dt.datetime) -> int | None:
    """Move one due ``deferred`` row to ``sending`` and return its attempt number; None if taken or not due.

    One conditional UPDATE: of several dispatchers racing for a row exactly one gets it.
    """
    with transaction(engine, write=True) as conn, _counted(conn, d.c.idempotency_key == key):
        claimed = conn.execute(
            d.update()
            .where(d.c.idempotency_key == key, d.c.status == "deferred", d.c.deliver_after <= now)
            .values(status="sending", attempts=d.c.attempts + 1, updated_at=now)
        ).rowcount
        if not claimed:
            return None
        return int(conn.execute(sa.select(d.c.attempts).where(d.c.idempotency_key == key)).scalar_one())


def requeue_delivery(
    engine: sa.Engine, key: str, *, deliver_after: dt.datetime, now: dt.datetime, error: str | None = None
) -> bool:
    """Put a claimed row whose attempt failed back to ``deferred`` until ``deliver_after`` (a later retry).

    Only a queued row being sent (``sending``/``retrying`` with a ``deliver_after``) moves; False otherwise.
    """
    with transaction(engine, write=True) as conn, _counted(conn, d.c.idempotency_key == key):
        moved = conn.execute(
            d.update()
            .where(
                d.c.idempotency_key == key,
                d.c.status.in_(("sending", "retrying")),
                d.c.deliver_after.is_not(None),
                d.c.message_json.is_not(None),
            )
            .values(status="deferred", deliver_after=deliver_after, updated_at=now, error=_truncate(error))
        ).rowcount
    return bool(moved)


def digest_recipients(engine: sa.Engine, now: dt.datetime, *, limit: int = 5_000) -> list[DigestBatch]:
    """Per (organization, recipient, channel), the ``digest`` rows whose digest time has come.

    Each row's ``deliver_after`` is the recipient's next digest time when it was recorded
    (:func:`rule_compiler.runtime.preferences.next_digest_at`), so no preference lookup is needed:
    a row queued after today's digest waits for tomorrow's. At most ``limit`` rows in all; the rest
    are found by the next call.
    """
    check_page(limit, 0, cap=50_000)
    query = (
        sa.select(d)
        .where(d.c.status == "digest", d.c.deliver_after <= now)
        .order_by(d.c.organization, d.c.recipient, d.c.channel, d.c.created_at, d.c.id)
        .limit(limit)
    )
    batches: dict[tuple[str, str, str], list[DeliveryRow]] = {}
    with transaction(engine) as conn:
        for row in conn.execute(query):
            item = _delivery_row(row)
            batches.setdefault((item.organization, item.recipient, item.channel), []).append(item)
    return [
        DigestBatch(organization=org, recipient=recipient, channel=channel, rows=tuple(rows))
        for (org, recipient, channel), rows in batches.items()
    ]


def mark_digested(engine: sa.Engine, keys: Sequence[str], now: dt.datetime) -> int:
    """Mark ``digest`` rows as sent in a digest (``digested``, message dropped); how many changed."""
    if not keys:
        return 0
    with transaction(engine, write=True) as conn, _counted(conn, d.c.idempotency_key.in_(list(keys))):
        changed = conn.execute(
            d.update()
            .where(d.c.idempotency_key.in_(list(keys)), d.c.status == "digest")
            .values(status="digested", sent_at=now, updated_at=now, message_json=None)
        ).rowcount
    return int(changed)


def get_delivery(engine: sa.Engine, key: str) -> DeliveryRow | None:
    """The delivery row of ``key``, or None."""
    with transaction(engine) as conn:
        row = conn.execute(sa.select(d).where(d.c.idempotency_key == key)).first()
    return _delivery_row(row) if row is not None else None


def list_deliveries(
    engine: sa.Engine,
    *,
    organization: str | None = None,
    status: str | None = None,
    rule_id: str | None = None,
    channel: str | None = None,
    recipient: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[DeliveryRow]:
    """Delivery rows, newest first, filtered by whatever is given."""
    check_page(limit, offset)
    if status is not None and status not in DELIVERY_STATUSES:
        raise ValueError(
            f"unknown delivery status {status!r}; expected one of {', '.join(DELIVERY_STATUSES)}"
        )
    filters = [
        column == value
        for column, value in (
            (d.c.organization, organization),
            (d.c.status, status),
            (d.c.rule_id, rule_id),
            (d.c.channel, channel),
            (d.c.recipient, recipient),
        )
        if value is not None
    ]
    query = sa.select(d).where(*filters).order_by(d.c.id.desc()).limit(limit).offset(offset)
    with transaction(engine) as conn:
        return [_delivery_row(row) for row in conn.execute(query)]


def delivery_stats(engine: sa.Engine, *, organization: str | None = None) -> dict[str, dict[str, int]]:
    """How many deliveries were recorded, per channel and status: ``{"email": {"sent": 3, ...}}``."""
    query = sa.select(d.c.channel, d.c.status, sa.func.count()).group_by(d.c.channel, d.c.status)
    if organization is not None:
        query = query.where(d.c.organization == organization)
    stats: dict[str, dict[str, int]] = {}
    with transaction(engine) as conn:
        for channel, status, count in conn.execute(query):
            stats.setdefault(channel, {})[status] = int(count)
    return {channel: dict(sorted(counts.items())) for channel, counts in sorted(stats.items())}


# --- helpers -------------------------------------------------------------------------------------


def _delivery_row(row: sa.Row[Any]) -> DeliveryRow:
    data = dict(row._mapping)
    data["message"] = loads(data.pop("message_json"))
    return DeliveryRow(**data)


def _check_delivery(delivery: NotificationDelivery) -> None:
    check_key(delivery.idempotency_key)
    if delivery.channel not in NOTIFICATION_CHANNELS:
        raise ValueError(
            f"unknown notification channel {delivery.channel!r}; "
            f"expected one of {', '.join(NOTIFICATION_CHANNELS)}"
        )
    if not delivery.recipient or len(delivery.recipient) > MAX_RECIPIENT:
        raise ValueError("a delivery's recipient must be a non-empty text of at most 320 characters")


def _truncate(error: str | None) -> str | None:
    return error[:MAX_ERROR] if error else None
