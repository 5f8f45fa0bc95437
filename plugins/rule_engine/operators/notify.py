"""``send_notification``: per matched row (or once), per recipient, on email, slack, webhook or in_app.

Subject and body are rendered in our sandbox, once per row. Each (row, channel, recipient) is one
delivery with its own idempotency key and record (:mod:`rule_engine.notices`): email and in-app
recipients' preferences apply (muted, quiet hours, daily digest); slack and webhook notices have one
"recipient", their connection. The output (XCom and the automation log) holds counts per status,
never addresses, message text or secrets.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from rule_compiler.errors import PermanentActionError, RetryableActionError
from rule_compiler.runtime.dispatch_plan import delivery_key
from rule_compiler.runtime.idempotency import idempotency_key
from rule_compiler.runtime.messages import render_message, render_recipients, render_user_names
from rule_compiler.store.notifications import NotificationDelivery
from rule_engine.channel_senders import DEFAULT_SMTP_CONNECTION, ChannelSenders
from rule_engine.notices import Notice, deliver, describe
from rule_engine.operators.actions import ActionOperator, Match
from rule_engine.operators.webhooks import RetryAfterPolicy

#: Every status a run of this action can count.
STATUSES = ("sent", "already_sent", "muted", "deferred", "digest", "retrying", "failed", "no_recipient")
MAX_PROBLEMS = 10


class NotificationOperator(ActionOperator):
    """Send one rendered message per row to each recipient, exactly once per delivery key.

    Email is at-least-once by nature: the delivery is recorded as ``sending`` before the SMTP call
    and ``sent`` after it, and every message of a row carries the same ``Message-ID`` (from the
    effect's key), so a retry after a recorded ``sent`` never resends and a crash in between
    resends an identical message. In-app messages are inserted exactly once by key.
    """

    ui_color = "#fef7e0"

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("retry_policy", RetryAfterPolicy())  # Slack/webhook 429 with Retry-After
        super().__init__(**kwargs)

    @property
    def organization(self) -> str:
        return self.rule_id.split("/", 1)[0]

    def run_action(self, context: Any, matches: list[Match]) -> dict[str, Any]:
        channel = str(self.spec_params.get("channel"))
        timeout = self.execution_timeout.total_seconds() if self.execution_timeout else 30.0
        senders = ChannelSenders(timeout=timeout)
        ti = context.get("ti")
        tally = _Tally(final_attempt=ti is None or int(ti.try_number) > int(self.retries or 0))
        for match, (record, event) in zip(matches, self.rows_of(matches), strict=True):
            template_context = self.template_context(context, record, event)
            self._notify_row(
                channel, match.occurrence, match.key_text, template_context, senders=senders, tally=tally
            )
        self.log.info("send_notification (%s): %s", channel, dict(tally.counts))
        tally.raise_failures()
        return {"channel": channel, **tally.counts}

    def _notify_row(
        self,
        channel: str,
        occurrence: str,
        key_text: str | None,
        template_context: dict[str, Any],
        *,
        senders: ChannelSenders,
        tally: _Tally,
    ) -> None:
        """Render one row's message and deliver it to each of its recipients."""
        where = f"row {key_text}" if key_text is not None else "the run"
        params = self.spec_params
        try:
            recipients = self._recipients(channel, template_context)
            rendered = render_message(
                str(params.get("subject") or ""), str(params.get("body") or ""), template_context
            )
        except PermanentActionError as exc:
            tally.permanent(f"{where}: {exc}")
            return
        if not recipients:
            tally.counts["no_recipient"] += 1
            return
        effect = idempotency_key(self.rule_id, occurrence, self.task_id, key_text, kind=self.definition_kind)
        message = {**rendered.as_dict(), "message_key": effect, "connection": self._connection(channel)}
        for number, recipient in enumerate(recipients, start=1):
            notice = Notice(self._delivery(occurrence, key_text, channel, recipient), message)
            try:
                outcome = deliver(self.store.engine, notice, senders, final_attempt=tally.final_attempt)
            except PermanentActionError as exc:
                tally.permanent(f"{where}, recipient {number}: {describe(exc)}")
            except RetryableActionError as exc:
                tally.retryable(exc)
            else:
                tally.counts[outcome] += 1

    def _recipients(self, channel: str, template_context: dict[str, Any]) -> list[str]:
        """Email addresses, in-app user names, or the connection of a slack/webhook notice."""
        to = list(self.spec_params.get("to") or [])
        if channel == "email":
            return render_recipients(to, template_context)
        if channel == "in_app":
            return render_user_names(to, template_context)
        if channel in {"slack", "webhook"}:
            return [f"connection:{self._connection(channel)}"]
        raise PermanentActionError(f"unknown notification channel '{channel}'")

    def _connection(self, channel: str) -> str | None:
        connection = self.spec_params.get("connection")
        if channel == "email":
            return str(connection or DEFAULT_SMTP_CONNECTION)
        if channel in {"slack", "webhook"} and not connection:
            raise PermanentActionError(f"a {channel} notification needs a connection")
        return str(connection) if connection else None

    def _delivery(
        self, occurrence: str, row_key: str | None, channel: str, recipient: str
    ) -> NotificationDelivery:
        return NotificationDelivery(
            idempotency_key=delivery_key(
                self.rule_id,
                occurrence,
                self.task_id,
                row_key,
                channel=channel,
                recipient=recipient,
                kind=self.definition_kind,
            ),
            organization=self.organization,
            rule_id=self.rule_id,
            action_id=self.task_id,
            occurrence_id=occurrence,
            row_key=row_key,
            channel=channel,
            recipient=recipient,
        )


class _Tally:
    """Counts per status, and the failures to raise once every row had its turn."""

    def __init__(self, *, final_attempt: bool) -> None:
        self.final_attempt = final_attempt
        self.counts: Counter[str] = Counter(dict.fromkeys(STATUSES, 0))
        self.problems: list[str] = []
        self.retry_error: RetryableActionError | None = None

    def permanent(self, problem: str) -> None:
        self.counts["failed"] += 1
        self.problems.append(problem)

    def retryable(self, error: RetryableActionError) -> None:
        self.counts["failed" if self.final_attempt else "retrying"] += 1
        self.retry_error = error

    def raise_failures(self) -> None:
        """Retry while tries remain (what was sent is recorded and skipped); else fail permanently."""
        if self.retry_error is not None and not self.final_attempt:
            raise self.retry_error
        details = self.problems[:MAX_PROBLEMS]
        if self.retry_error is not None:
            details.append(describe(self.retry_error))
        if details:
            more = " ..." if len(self.problems) > MAX_PROBLEMS else ""
            raise PermanentActionError(
                f"{self.counts['failed']} notification(s) failed: {'; '.join(details)}{more}"
            )
