"""Send one already rendered notification on its channel: email, slack or webhook.

A message is the mapping stored with a delivery (``subject``, ``body``, the escaped ``html`` of an
email, the ``connection`` of email/slack/webhook, and ``message_key``, the effect's key that makes
an email's ``Message-ID``), so a message deferred by quiet hours is sent later exactly as it was
rendered. Failures raise :class:`~rule_compiler.errors.PermanentActionError` or
:class:`~rule_compiler.errors.RetryableActionError`; recording them is the caller's job. Nothing
here writes the rule store: an ``in_app`` message is a row of the recipient's inbox, which
:func:`rule_engine.notices.send_notice` writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from rule_compiler.canonical import canonical_json
from rule_compiler.clock import utcnow
from rule_compiler.errors import PermanentActionError
from rule_compiler.runtime.messages import email_message, message_id_for, notification_payload, slack_text
from rule_compiler.runtime.webhook_requests import classify_response, signature_headers
from rule_engine.hooks.slack import SlackWebhookSender
from rule_engine.hooks.smtp import SmtpSender
from rule_engine.hooks.webhook_client import WebhookHook, send_webhook

DEFAULT_SMTP_CONNECTION = "smtp_default"


class Target(Protocol):
    """Who and what a message is for: a delivery's identity (a delivery row has these too)."""

    @property
    def idempotency_key(self) -> str: ...
    @property
    def organization(self) -> str: ...
    @property
    def rule_id(self) -> str: ...
    @property
    def occurrence_id(self) -> str: ...
    @property
    def row_key(self) -> str | None: ...
    @property
    def channel(self) -> str: ...
    @property
    def recipient(self) -> str: ...


class ChannelSenders:
    """The senders one task needs, each connection read once."""

    def __init__(self, *, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self._smtp: dict[str, SmtpSender] = {}
        self._slack: dict[str, SlackWebhookSender] = {}
        self._webhooks: dict[str, tuple[str, list[str]]] = {}

    def send(self, target: Target, message: Mapping[str, Any]) -> None:
        """Deliver ``message`` to ``target`` once; raise on failure. (An ``in_app`` message is not
        sent: it is written to the inbox, by ``notices.send_notice``.)"""
        send = {"email": self._email, "slack": self._slack_message, "webhook": self._webhook}.get(
            target.channel
        )
        if send is None:
            raise PermanentActionError(f"notification channel '{target.channel}' is not sent by a sender")
        send(target, message)

    def _slack_message(self, target: Target, message: Mapping[str, Any]) -> None:
        sender = self._slack_sender(_connection(message, target.channel))
        text = slack_text(str(message.get("subject") or ""), str(message.get("body") or ""))
        sender.post({"text": text}, timeout=self.timeout)

    def _email(self, target: Target, message: Mapping[str, Any]) -> None:
        conn_id = str(message.get("connection") or DEFAULT_SMTP_CONNECTION)
        sender = self._smtp.get(conn_id)
        if sender is None:
            sender = self._smtp[conn_id] = SmtpSender(conn_id)
        key = str(message.get("message_key") or target.idempotency_key)
        email = email_message(
            sender=sender.sender,
            recipients=[target.recipient],
            message=message,
            message_id=message_id_for(key, sender.domain),
        )
        sender.send(email)

    def _slack_sender(self, conn_id: str) -> SlackWebhookSender:
        sender = self._slack.get(conn_id)
        if sender is None:
            sender = self._slack[conn_id] = SlackWebhookSender(conn_id)
        return sender

    def _webhook(self, target: Target, message: Mapping[str, Any]) -> None:
        conn_id = _connection(message, "webhook")
        if conn_id not in self._webhooks:
            self._webhooks[conn_id] = WebhookHook(conn_id).base_url_and_secrets()
        base_url, secrets = self._webhooks[conn_id]
        payload = notification_payload(
            message, rule_id=target.rule_id, occurrence_id=target.occurrence_id, row_key=target.row_key
        )
        body = canonical_json(payload)
        headers = {
            "Content-Type": "application/json",
            **signature_headers(secrets, target.idempotency_key, utcnow(), body),
        }
        response = send_webhook(method="POST", url=base_url, headers=headers, body=body, timeout=self.timeout)
        error = classify_response(response.status, response.retry_after, utcnow())
        if error is not None:
            raise error


def _connection(message: Mapping[str, Any], channel: str) -> str:
    conn_id = message.get("connection")
    if not conn_id:
        raise PermanentActionError(f"a {channel} notification needs a connection")
    return str(conn_id)
