"""Airflow notifiers on the rule engine's channels, for ``on_failure_callback`` and friends.

Unlike provider notifiers, nothing here is rendered by Airflow's templater (``template_fields`` is
empty): subject and body are rendered by our sandbox over a small context we build from the
callback's —

- ``rule``: ``id``, ``owner``;
- ``run``: ``id`` (run id), ``dag_id``, ``task_id``, ``exception`` (its kind and first line,
  with secrets Airflow knows of redacted), ``logical_date``

— never Airflow's own context (``conn``, ``var``). Deliveries go through the same records and
preferences as ``send_notification`` (:mod:`rule_engine.notices`). A notifier never raises: a
notice that cannot be sent is logged, and the task's outcome stays what it was.

This module is imported while DAG files are parsed (every rule with an ``owner`` gets a failure
notifier), so the sending machinery is imported only when a notice is sent.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
from typing import Any

from airflow.sdk.bases.notifier import BaseNotifier

from rule_compiler.addresses import is_address, is_user_name
from rule_compiler.definitions.action_types import NOTIFICATION_CHANNELS
from rule_compiler.templating import TemplateCheckError, check_template

CHANNELS = NOTIFICATION_CHANNELS
#: Environment variable naming the SMTP connection of owner failure notices (default ``smtp_default``).
FAILURE_SMTP_CONN_ENV = "AUTOMATION_FAILURE_SMTP_CONN"
MAX_EXCEPTION_CHARS = 500

FAILURE_SUBJECT = "Automation {{ rule.id }} failed in task {{ run.task_id }}"
FAILURE_BODY = """The automation rule {{ rule.id }} failed.

DAG:   {{ run.dag_id }}
Run:   {{ run.id }}
Task:  {{ run.task_id }}
Error: {{ run.exception }}

The task log in the Airflow UI and the rule's automation log say more.
"""


class RuleEngineNotifier(BaseNotifier):
    """Send a notice on ``email``, ``slack``, ``webhook`` or ``in_app`` from an Airflow callback.

    ``to``: email addresses or in-app user names (templates over the context above; ignored for
    slack and webhook, whose ``connection`` is the recipient). ``connection``: the SMTP connection
    (default ``smtp_default``), the Slack webhook or the webhook connection. ``notice_id`` names the
    notice in delivery keys: one delivery per (rule, run, notice, recipient), so a callback that
    fires again for the same run sends nothing new.
    """

    template_fields: Sequence[str] = ()

    def __init__(
        self,
        *,
        channel: str,
        organization: str,
        subject: str,
        body: str,
        to: Sequence[str] = (),
        connection: str | None = None,
        rule_id: str | None = None,
        owner: str | None = None,
        notice_id: str | None = None,
    ) -> None:
        super().__init__()
        if channel not in CHANNELS:
            raise ValueError(f"channel must be one of {', '.join(CHANNELS)}, not {channel!r}")
        if channel in {"slack", "webhook"} and not connection:
            raise ValueError(f"a {channel} notifier needs a connection")
        for text in (subject, body, *to):
            _check(text)
        self.channel = channel
        self.organization = organization
        self.subject = subject
        self.body = body
        self.to = tuple(to)
        self.connection = connection
        self.rule_id = rule_id
        self.owner = owner
        self.notice_id = notice_id

    def _identity(self) -> tuple[Any, ...]:
        return (type(self), self.channel, self.organization, self.subject, self.body, self.to,
                self.connection, self.rule_id, self.owner, self.notice_id)  # fmt: skip

    def __eq__(self, other: object) -> bool:
        """Notifiers configured alike are equal (DAGs built twice compare equal)."""
        return isinstance(other, RuleEngineNotifier) and self._identity() == other._identity()

    def __hash__(self) -> int:
        return hash(self._identity())

    def notify(self, context: Mapping[str, Any]) -> None:
        try:
            counts = self.send(context)
        except Exception as exc:  # a callback must never change the task's outcome
            self.log.error("rule engine notice (%s) could not be sent: %s", self.channel, _describe(exc))
            return
        self.log.info("rule engine notice (%s): %s", self.channel, counts)

    def send(self, context: Mapping[str, Any]) -> dict[str, int]:
        """Render and deliver; counts per outcome. Raises on failure (``notify`` does not)."""
        from rule_compiler.runtime.dispatch_plan import delivery_key
        from rule_compiler.runtime.messages import render_message
        from rule_compiler.store import RuleStore
        from rule_compiler.store.notifications import NotificationDelivery
        from rule_engine.channel_senders import ChannelSenders
        from rule_engine.notices import Notice, deliver

        template_context = self.template_context(context)
        run = template_context["run"]
        rule_id = str(template_context["rule"]["id"])
        recipients = self.recipients(template_context)
        rendered = render_message(self.subject, self.body, template_context)
        notice_id = self.notice_id or f"notifier:{run['task_id'] or 'dag'}"
        message = {
            **rendered.as_dict(),
            "message_key": delivery_key(
                rule_id, run["id"], notice_id, None, channel=self.channel, recipient=""
            ),
            "connection": self.smtp_connection() if self.channel == "email" else self.connection,
        }
        counts: dict[str, int] = {}
        store = RuleStore()
        try:
            senders = ChannelSenders()
            for recipient in recipients:
                key = delivery_key(
                    rule_id, run["id"], notice_id, None, channel=self.channel, recipient=recipient
                )
                delivery = NotificationDelivery(
                    idempotency_key=key,
                    organization=self.organization,
                    rule_id=rule_id,
                    action_id=notice_id,
                    occurrence_id=run["id"],
                    row_key=None,
                    channel=self.channel,
                    recipient=recipient,
                )
                outcome = deliver(store.engine, Notice(delivery, message), senders)
                counts[outcome] = counts.get(outcome, 0) + 1
        finally:
            store.close()
        return counts

    def recipients(self, template_context: Mapping[str, Any]) -> list[str]:
        """Who gets the notice: rendered ``to``, or the connection of a slack/webhook notice."""
        from rule_compiler.runtime.messages import render_recipients, render_user_names

        if self.channel == "email":
            return render_recipients(self.to, template_context)
        if self.channel == "in_app":
            return render_user_names(self.to, template_context)
        return [f"connection:{self.connection}"]

    def smtp_connection(self) -> str:
        return self.connection or "smtp_default"

    def template_context(self, context: Mapping[str, Any]) -> dict[str, Any]:
        """What our templates may read (see the module docs); built from, never exposing, Airflow's."""
        ti = context.get("ti") or context.get("task_instance")
        dag = context.get("dag")
        dag_id = getattr(ti, "dag_id", None) or getattr(dag, "dag_id", None) or ""
        run_id = context.get("run_id") or getattr(ti, "run_id", None) or ""
        logical_date = context.get("logical_date")
        return {
            "rule": {"id": self.rule_id or dag_id, "owner": self.owner or ""},
            "run": {
                "id": str(run_id),
                "dag_id": str(dag_id),
                "task_id": str(getattr(ti, "task_id", None) or ""),
                "exception": exception_summary(context.get("exception")),
                "logical_date": logical_date.isoformat() if logical_date is not None else "",
            },
        }


class OwnerFailureNotifier(RuleEngineNotifier):
    """A rule's failure notice to its owner: email when the owner is an address (through
    ``$AUTOMATION_FAILURE_SMTP_CONN``, default ``smtp_default``), else an in-app message to the owner
    name in the rule's organization. One notice per run, however many of its tasks fail."""

    def __init__(self, *, owner: str, organization: str, rule_id: str) -> None:
        super().__init__(
            channel="email" if is_address(owner) else "in_app",
            organization=organization,
            subject=FAILURE_SUBJECT,
            body=FAILURE_BODY,
            rule_id=rule_id,
            owner=owner,
            notice_id="owner-failure",
        )

    def recipients(self, template_context: Mapping[str, Any]) -> list[str]:
        owner = (self.owner or "").strip()  # the owner is data, never a template
        if not (is_address(owner) or is_user_name(owner)):
            raise ValueError(f"owner {owner[:80]!r} is neither an email address nor a user name")
        return [owner]

    def smtp_connection(self) -> str:
        return os.environ.get(FAILURE_SMTP_CONN_ENV) or "smtp_default"


RATE_SUBJECT = "Automation {{ rule.id }} failed {{ alert.failed }} of {{ alert.runs }} runs"
RATE_BODY = """The automation {{ rule.id }} failed {{ alert.failed }} of its {{ alert.runs }} runs that
matched something between {{ alert.window_start }} and {{ alert.window_end }} (UTC): a failure rate of
{{ alert.rate }}, at or above its alert threshold of {{ alert.threshold }}.

You get this once per window. The rule's analytics and automation log say more.
"""


class FailureRateNotifier(OwnerFailureNotifier):
    """A failure-rate alert to a definition's owner (ADR 0014), through the owner failure notice's
    channel choice and records; one delivery per (definition, window), keyed by the window."""

    def __init__(self, *, owner: str, organization: str, rule_id: str, alert: Mapping[str, Any]) -> None:
        super().__init__(owner=owner, organization=organization, rule_id=rule_id)
        self.subject, self.body, self.notice_id = RATE_SUBJECT, RATE_BODY, "failure-rate"
        self.alert = dict(alert)

    def template_context(self, context: Mapping[str, Any]) -> dict[str, Any]:
        window = f"failure-rate:{self.alert['window_start']}"
        run = {"id": window, "dag_id": "", "task_id": "", "exception": "", "logical_date": ""}
        return {"rule": {"id": self.rule_id, "owner": self.owner or ""}, "run": run, "alert": self.alert}


def exception_summary(exception: Any) -> str:
    """An exception's kind and first line, bounded, with the secrets Airflow masks redacted."""
    if exception is None:
        return ""
    if not isinstance(exception, BaseException):
        text = str(exception)
    else:
        lines = str(exception).strip().splitlines()
        text = f"{type(exception).__name__}: {lines[0] if lines else ''}"
    try:
        from airflow.sdk._shared.secrets_masker import redact

        text = str(redact(text))
    except ImportError:  # pragma: no cover - older SDKs
        pass
    return text[:MAX_EXCEPTION_CHARS]


@functools.lru_cache(maxsize=256)
def _check(text: str) -> None:
    """Check a template once per process (every rule DAG's failure notifier shares the same two)."""
    try:
        check_template(text)
    except TemplateCheckError as exc:
        raise ValueError(f"notifier template {text[:60]!r}: {exc}") from None


def _describe(exc: BaseException) -> str:
    return exception_summary(exc)
