"""Shared by the notification tests: a real SMTP server on loopback (aiosmtpd) and store queries."""

from __future__ import annotations

import email
import email.policy
import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller

from rule_compiler.store import RuleStore
from rule_compiler.store.tables import notification_deliveries, notification_inbox


class Inbox:
    """An aiosmtpd handler that keeps every message it receives."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], email.message.EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((list(envelope.rcpt_tos), parsed))
        return "250 OK"

    def to(self, address: str) -> list[email.message.EmailMessage]:
        return [message for rcpt, message in self.messages if rcpt == [address]]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running_smtp(monkeypatch: pytest.MonkeyPatch, conn_id: str = "smtp_default") -> Iterator[Inbox]:
    """An SMTP server on loopback behind the Airflow connection ``conn_id``."""
    port = free_port()
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    connection = {"conn_type": "smtp", "host": "127.0.0.1", "port": port,
                  "extra": {"from_email": "automation@example.com"}}  # fmt: skip
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(connection))
    try:
        yield inbox
    finally:
        controller.stop()


def deliveries(store: RuleStore) -> list[dict[str, Any]]:
    with store.engine.connect() as conn:
        query = sa.select(notification_deliveries).order_by(notification_deliveries.c.id)
        return [dict(row._mapping) for row in conn.execute(query)]


def inbox_rows(store: RuleStore) -> list[dict[str, Any]]:
    with store.engine.connect() as conn:
        query = sa.select(notification_inbox).order_by(notification_inbox.c.id)
        return [dict(row._mapping) for row in conn.execute(query)]
