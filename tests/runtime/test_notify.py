"""Email messages: recipients checked, text + HTML parts, HTML autoescaped, stable Message-ID."""

from __future__ import annotations

import pytest

from rule_compiler.errors import PermanentActionError
from rule_compiler.runtime.notify import build_email, is_address, message_id_for, render_recipients

CONTEXT = {"record": {"id": 7, "name": "Ann <script>alert(1)</script>", "email": "ann@example.com",
                      "manager": None}, "rule": {"id": "acme/r"}, "run": {"id": "manual__1"}}  # fmt: skip


def test_recipients_are_rendered_checked_and_deduplicated() -> None:
    templates = ["{{ record.email }}", "ops@example.com", "{{ record.email }}", "{{ record.manager or '' }}"]
    assert render_recipients(templates, CONTEXT) == ["ann@example.com", "ops@example.com"]
    with pytest.raises(PermanentActionError, match="not an email address"):
        render_recipients(["{{ record.name }}"], CONTEXT)
    with pytest.raises(PermanentActionError, match="could not be rendered"):
        render_recipients(["{{ record.missing }}"], CONTEXT)
    assert not is_address("a@b") and is_address("a.b+c@d.example")


def test_message_has_text_and_escaped_html_and_a_stable_id() -> None:
    message = build_email(
        sender="Automation <automation@example.com>",
        recipients=["ann@example.com"],
        subject_template="Order {{ record.id }}\nneeds attention",
        body_template="Hello {{ record.name }}, order {{ record.id }}.",
        context=CONTEXT,
        message_id=message_id_for("k" * 64, "example.com"),
    )
    assert message["Subject"] == "Order 7 needs attention"  # no header injection through newlines
    assert message["Message-ID"] == f"<{'k' * 64}@example.com>"
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and "Ann <script>alert(1)</script>" in text.get_content()
    assert html is not None and "Ann &lt;script&gt;alert(1)&lt;/script&gt;" in html.get_content()
    assert "<script>" not in html.get_content()
