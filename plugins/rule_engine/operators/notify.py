"""``send_notification``: one message per matched row (or one per run), rendered in our sandbox."""

from __future__ import annotations

from typing import Any

from rule_compiler.canonical import canonical_json
from rule_compiler.errors import PermanentActionError
from rule_compiler.runtime.idempotency import idempotency_key
from rule_compiler.runtime.notify import build_email, message_id_for, render_recipients
from rule_engine.hooks.smtp import SmtpSender
from rule_engine.operators.actions import ActionOperator

DEFAULT_SMTP_CONNECTION = "smtp_default"


class NotificationOperator(ActionOperator):
    """Email today; slack, webhook and in-app channels and stored templates arrive with their issue.

    Email is at-least-once: a retry resends the same message (same ``Message-ID``). The output (and
    so XCom) holds counts and message ids, never addresses.
    """

    ui_color = "#fef7e0"

    def run_action(self, context: Any, matched_keys: list[Any]) -> dict[str, Any]:
        params = self.spec_params
        if params.get("channel") != "email":
            raise PermanentActionError(
                f"channel '{params.get('channel')}' is not supported by this release yet"
            )
        if params.get("template") is not None:
            raise PermanentActionError("stored notification templates are not supported by this release yet")
        sender = SmtpSender(params.get("connection") or DEFAULT_SMTP_CONNECTION)
        records = self.rows_by_key(matched_keys)
        sent: list[str] = []
        skipped = 0
        for key in matched_keys or [None]:
            key_text = canonical_json(key) if key is not None else None
            template_context = self.template_context(context, records.get(key_text or ""))
            recipients = render_recipients(params.get("to", []), template_context)
            if not recipients:
                skipped += 1
                continue
            effect_key = idempotency_key(self.rule_id, self.occurrence_id(context), self.task_id, key_text)
            message = build_email(
                sender=sender.sender,
                recipients=recipients,
                subject_template=params.get("subject") or "",
                body_template=params.get("body") or "",
                context=template_context,
                message_id=message_id_for(effect_key, sender.domain),
            )
            sender.send(message)
            sent.append(str(message["Message-ID"]))
        self.log.info("emails sent: %d, rows without a recipient: %d", len(sent), skipped)
        return {"channel": "email", "sent": len(sent), "no_recipient": skipped, "message_ids": sent[:50]}
