"""Notification messages, built from checked templates in our sandbox (no I/O here).

An email is at-least-once by nature (SMTP has no idempotent submit): each message carries a stable
``Message-ID`` derived from the idempotency key, so a retry resends the *same* message and mail
clients and archives see one message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from email.message import EmailMessage
from email.utils import formataddr, parseaddr
from typing import Any

from jinja2 import TemplateError

from rule_compiler.errors import PermanentActionError
from rule_compiler.templating import TemplateCheckError, render

#: A pragmatic address check: one @, no spaces or angle brackets, a dot in the domain.
_ADDRESS = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+$")
MAX_RECIPIENTS = 100


def is_address(text: str) -> bool:
    """Whether ``text`` is one plain email address (``ops@example.com``)."""
    return bool(_ADDRESS.match(text))


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
    message = EmailMessage()
    message["From"] = formataddr(parseaddr(sender))
    message["To"] = ", ".join(recipients)
    message["Subject"] = " ".join(_render(subject_template, context, "subject").split())
    message["Message-ID"] = message_id
    text = _render(body_template, context, "body")
    message.set_content(text)
    try:
        escaped = render(body_template, context, html=True)
    except (TemplateError, TemplateCheckError) as exc:
        raise PermanentActionError(f"the body template could not be rendered: {exc}") from None
    message.add_alternative(
        '<!doctype html><html><body><div style="font-family:sans-serif;white-space:pre-wrap">'
        f"{escaped}</div></body></html>",
        subtype="html",
    )
    return message


def message_id_for(idempotency_key: str, domain: str) -> str:
    """``<key@domain>``: stable across retries of the same effect."""
    return f"<{idempotency_key}@{domain}>"


def _render(template: str, context: Mapping[str, Any], what: str) -> str:
    """Render, turning a missing value or a sandbox refusal into a permanent, explained failure."""
    try:
        return render(template, context)
    except (TemplateError, TemplateCheckError) as exc:  # UndefinedError, SecurityError, size cap
        raise PermanentActionError(f"the {what} template could not be rendered: {exc}") from None
