"""The ``in_app`` channel's inbox in the rule store: messages written once per key, read and marked read."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from rule_compiler.store._bookkeeping import check_key, check_page, transaction
from rule_compiler.store.runs import upsert
from rule_compiler.store.tables import notification_inbox as inbox


@dataclass(frozen=True)
class InboxMessage:
    """One in-app message of a recipient."""

    id: int
    idempotency_key: str
    organization: str
    recipient: str
    rule_id: str | None
    subject: str
    body: str
    created_at: dt.datetime
    read_at: dt.datetime | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields (times as ISO 8601)."""
        return {
            name: value.isoformat() if isinstance(value, dt.datetime) else value
            for name, value in self.__dict__.items()
        }


def add_inbox_message(
    engine_or_conn: sa.Engine | sa.Connection,
    *,
    idempotency_key: str,
    organization: str,
    recipient: str,
    rule_id: str | None,
    subject: str,
    body: str,
    now: dt.datetime,
) -> bool:
    """Put a message in a recipient's inbox; False (nothing written) when the key is already there.

    Given a connection, the insert joins the caller's transaction (the delivery record can share it).
    """
    check_key(idempotency_key)
    values = {
        "idempotency_key": idempotency_key,
        "organization": organization,
        "recipient": recipient,
        "rule_id": rule_id,
        "subject": subject,
        "body": body,
        "created_at": now,
    }
    if isinstance(engine_or_conn, sa.Connection):
        return _insert_inbox(engine_or_conn, values)
    with transaction(engine_or_conn, write=True) as conn:
        return _insert_inbox(conn, values)


def _insert_inbox(conn: sa.Connection, values: dict[str, Any]) -> bool:
    statement = (
        upsert(conn, inbox).values(**values).on_conflict_do_nothing(index_elements=[inbox.c.idempotency_key])
    )
    return bool(conn.execute(statement).rowcount)


def list_inbox(
    engine: sa.Engine,
    *,
    organization: str,
    recipient: str,
    unread_only: bool = False,
    limit: int = 50,
    offset: int = 0,
) -> list[InboxMessage]:
    """A recipient's messages, newest first."""
    check_page(limit, offset)
    query = sa.select(inbox).where(inbox.c.organization == organization, inbox.c.recipient == recipient)
    if unread_only:
        query = query.where(inbox.c.read_at.is_(None))
    query = query.order_by(inbox.c.id.desc()).limit(limit).offset(offset)
    with transaction(engine) as conn:
        return [InboxMessage(**row._mapping) for row in conn.execute(query)]


def count_unread(engine: sa.Engine, *, organization: str, recipient: str) -> int:
    """How many of a recipient's messages are unread."""
    query = sa.select(sa.func.count()).where(
        inbox.c.organization == organization, inbox.c.recipient == recipient, inbox.c.read_at.is_(None)
    )
    with transaction(engine) as conn:
        return int(conn.execute(query).scalar_one())


def mark_read(
    engine: sa.Engine,
    *,
    organization: str,
    recipient: str,
    ids: Sequence[int] | None = None,
    now: dt.datetime,
) -> int:
    """Mark unread messages of this recipient in this organization read (``ids``: only those; None: all).

    Ids of other recipients' messages are ignored; returns how many messages changed.
    """
    if ids is not None and not ids:
        return 0
    query = inbox.update().where(
        inbox.c.organization == organization, inbox.c.recipient == recipient, inbox.c.read_at.is_(None)
    )
    if ids is not None:
        query = query.where(inbox.c.id.in_([int(i) for i in ids]))
    with transaction(engine, write=True) as conn:
        return int(conn.execute(query.values(read_at=now)).rowcount)
