"""Email messages: recipients checked, text + HTML parts, HTML autoescaped, stable Message-ID."""

from __future__ import annotations

import json

import pytest

from rule_compiler.addresses import is_address, is_user_name
from rule_compiler.errors import PermanentActionError
from rule_compiler.runtime.messages import (
    build_email,
    email_message,
    message_id_for,
    notification_payload,
    render_message,
    render_recipients,
    render_user_names,
    slack_text,
)

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


def test_in_app_recipients_are_user_names() -> None:
    context = {"record": {"team": "ops.emea", "blank": ""}}
    names = ["sales-ops", "{{ record.team }}", "{{ record.blank }}", "sales-ops"]
    assert render_user_names(names, context) == ["sales-ops", "ops.emea"]
    for bad in ("Sales Ops", "<b>x</b>", "-leading", "a" * 151):
        assert not is_user_name(bad)
        with pytest.raises(PermanentActionError, match="is not a user name"):
            render_user_names([bad], context)


def test_a_rendered_message_becomes_the_same_email_later() -> None:
    rendered = render_message("Order {{ record.id }}", "Hi {{ record.name }}", CONTEXT)
    assert rendered.subject == "Order 7" and rendered.body == "Hi Ann <script>alert(1)</script>"
    assert rendered.html == "Hi Ann &lt;script&gt;alert(1)&lt;/script&gt;"
    stored = json.loads(json.dumps(rendered.as_dict()))  # as kept while a message waits
    message = email_message(sender="a@example.com", recipients=["b@example.com"], message=stored,
                            message_id="<k@example.com>")  # fmt: skip
    html = message.get_body(("html",))
    assert html is not None and rendered.html in html.get_content()
    # A message without an HTML part (a digest) gets its text escaped into one.
    plain = {"subject": "s", "body": "1 < 2 & <b>"}
    digest = email_message(sender="a@example.com", recipients=["b@example.com"], message=plain,
                           message_id="<d@example.com>")  # fmt: skip
    digest_html = digest.get_body(("html",))
    assert digest_html is not None and "1 &lt; 2 &amp; &lt;b&gt;" in digest_html.get_content()


def test_slack_text_escapes_markup_from_values_and_webhook_payloads_name_their_source() -> None:
    assert slack_text("Order 7\nurgent", "<!channel> & <https://evil|click>") == (
        "*Order 7 urgent*\n&lt;!channel&gt; &amp; &lt;https://evil|click&gt;"
    )
    assert slack_text("", "just text") == "just text"
    payload = notification_payload({"subject": "s", "body": "b", "html": "x"}, rule_id="acme/r",
                                    occurrence_id="manual__1", row_key="[7]")  # fmt: skip
    assert payload == {
        "subject": "s",
        "body": "b",
        "rule": "acme/r",
        "occurrence": "manual__1",
        "row_key": "[7]",
    }
