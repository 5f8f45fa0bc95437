"""Notification messages, built from checked templates in our sandbox (no I/O here).

An email is at-least-once by nature (SMTP has no idempotent submit): each message carries a stable
``Message-ID`` derived from the idempotency key, so a retry resends the *same* message and mail
clients and archives see one message.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, parseaddr
from typing import Any

from jinja2 import TemplateError

from rule_compiler.addresses import is_address, is_user_name
from rule_compiler.clock import utcnow
from rule_compiler.errors import PermanentActionError
from rule_compiler.templating import TemplateCheckError, render

MAX_RECIPIENTS = 100


def render_recipients(templates: Sequence[str], context: Mapping[str, Any]) -> list[str]:
    """Each ``to`` entry rendered; blanks dropped; PermanentActionError for anything not an address."""
    recipients: list[str] = []
    for template in templates:
        address = _render(template, context, "recipient").strip()
        if not address:
            continue  # e.g. a customer without an account manager: nobody to tell
        if not is_address(address):
            raise PermanentActionError(f"recipient {address!r} (from {template!r}) is not an email address")
        if address not in recipients:
            recipients.append(address)
    return recipients[:MAX_RECIPIENTS]


def render_user_names(templates: Sequence[str], context: Mapping[str, Any]) -> list[str]:
    """Each in-app ``to`` entry rendered; blanks dropped; PermanentActionError for a non-user-name."""
    names: list[str] = []
    for template in templates:
        name = _render(template, context, "recipient").strip()
        if not name:
            continue
        if not is_user_name(name):
            raise PermanentActionError(f"recipient {name[:100]!r} (from {template!r}) is not a user name")
        if name not in names:
            names.append(name)
    return names[:MAX_RECIPIENTS]


def build_email(
    *,
    sender: str,
    recipients: Sequence[str],
    subject_template: str,
    body_template: str,
    context: Mapping[str, Any],
    message_id: str,
) -> EmailMessage:
    """A multipart text + HTML message; the HTML part is autoescaped (values cannot inject markup)."""
    rendered = render_message(subject_template, body_template, context)
    return email_message(
        sender=sender, recipients=recipients, message=rendered.as_dict(), message_id=message_id
    )


@dataclass(frozen=True)
class RenderedMessage:
    """A notification rendered once, sendable later on any channel (quiet hours, digests)."""

    subject: str  # one line: newlines folded, so no header injection
    body: str  # plain text
    html: str  # the body rendered again with autoescaping: safe to put inside HTML

    def as_dict(self) -> dict[str, str]:
        return {"subject": self.subject, "body": self.body, "html": self.html}


def render_message(subject_template: str, body_template: str, context: Mapping[str, Any]) -> RenderedMessage:
    """Subject and body rendered in the sandbox; PermanentActionError when a template cannot render."""
    subject = " ".join(_render(subject_template, context, "subject").split())
    body = _render(body_template, context, "body")
    try:
        html = render(body_template, context, html=True)
    except (TemplateError, TemplateCheckError) as exc:
        raise PermanentActionError(f"the body template could not be rendered: {exc}") from None
    return RenderedMessage(subject=subject, body=body, html=html)


def email_message(
    *,
    sender: str,
    recipients: Sequence[str],
    message: Mapping[str, Any],
    message_id: str,
    date: dt.datetime | None = None,
) -> EmailMessage:
    """An email from an already rendered message (``subject``, ``body``, optional escaped ``html``);
    ``Date`` is when it is built (``date``, default now, in UTC)."""
    email = EmailMessage()
    email["From"] = formataddr(parseaddr(sender))
    email["To"] = ", ".join(recipients)
    email["Subject"] = " ".join(str(message.get("subject") or "").split())
    email["Date"] = format_datetime((date or utcnow()).astimezone(dt.UTC))
    email["Message-ID"] = message_id
    text = str(message.get("body") or "")
    email.set_content(text)
    inner = message.get("html")
    escaped = str(inner) if inner is not None else html.escape(text)
    email.add_alternative(
        '<!doctype html><html><body><div style="font-family:sans-serif;white-space:pre-wrap">'
        f"{escaped}</div></body></html>",
        subtype="html",
    )
    return email


def message_id_for(idempotency_key: str, domain: str) -> str:
    """``<key@domain>``: stable across retries of the same effect."""
    return f"<{idempotency_key}@{domain}>"


def _render(template: str, context: Mapping[str, Any], what: str) -> str:
    """Render, turning a missing value or a sandbox refusal into a permanent, explained failure."""
    try:
        return render(template, context)
    except (TemplateError, TemplateCheckError) as exc:  # UndefinedError, SecurityError, size cap
        raise PermanentActionError(f"the {what} template could not be rendered: {exc}") from None


def slack_text(subject: str, body: str) -> str:
    """Slack ``text``: the subject as a bold first line, then the body. ``&``, ``<`` and ``>`` are
    escaped as Slack asks, so row values cannot forge links or mentions (``<!channel>``)."""
    escaped_body = _slack_escape(body)
    if not subject.strip():
        return escaped_body
    return f"*{_slack_escape(' '.join(subject.split()))}*\n{escaped_body}"


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def notification_payload(
    message: Mapping[str, Any], *, rule_id: str, occurrence_id: str, row_key: str | None
) -> dict[str, Any]:
    """The JSON a ``webhook`` notification posts: subject, body and where it came from."""
    return {
        "subject": str(message.get("subject") or ""),
        "body": str(message.get("body") or ""),
        "rule": rule_id,
        "occurrence": occurrence_id,
        "row_key": row_key,
    }
