"""Slack incoming webhooks, posted through the same SSRF-guarded transport as ``call_webhook``.

The webhook URL is a credential (anyone holding it can post), so it lives in an Airflow connection
and is masked in logs. As with Airflow's Slack provider (``slackwebhook`` connections):

- ``password`` holds the whole URL (``https://hooks.slack.com/services/T…/B…/…``), or only the
  token part (``T…/B…/…``), which is then appended to ``host`` (default
  ``https://hooks.slack.com/services``);
- with an empty ``password``, ``host`` is the whole URL.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from airflow.sdk import BaseHook
from airflow.sdk.log import mask_secret

from rule_compiler.canonical import canonical_json
from rule_compiler.clock import utcnow
from rule_compiler.errors import PermanentActionError
from rule_compiler.runtime.webhook_requests import classify_response
from rule_engine.hooks.webhook_client import WebhookResponse, send_webhook

DEFAULT_SLACK_HOST = "https://hooks.slack.com/services"


def slack_webhook_url(*, host: str | None, password: str | None, conn_id: str = "?") -> str:
    """The incoming-webhook URL of a connection (see the module docs for where it may live)."""
    secret = (password or "").strip()
    base = (host or "").strip()
    if secret.startswith(("https://", "http://")):
        return secret
    if secret:
        base = base or DEFAULT_SLACK_HOST
        if "://" not in base:
            base = f"https://{base}"
        return f"{base.rstrip('/')}/{secret.lstrip('/')}"
    if "://" in base:
        return base
    raise PermanentActionError(
        f"connection '{conn_id}' holds no Slack webhook URL (put it in the password, or the host)"
    )


class SlackWebhookSender(BaseHook):
    """Posts a message to the Slack incoming webhook named by an Airflow connection."""

    conn_name_attr = "conn_id"
    hook_name = "Rule engine Slack webhook"

    def __init__(self, conn_id: str) -> None:
        super().__init__()
        self.conn_id = conn_id

    @cached_property
    def url(self) -> str:
        """The webhook URL, read once and masked in every log from then on."""
        connection = self.get_connection(self.conn_id)
        url = slack_webhook_url(host=connection.host, password=connection.password, conn_id=self.conn_id)
        for secret in (url, connection.password):
            if secret:
                mask_secret(secret)
        return url

    def post(self, payload: dict[str, Any], *, timeout: float = 30.0) -> WebhookResponse:
        """One POST; 2xx returns, 408/429/5xx raise a retryable error, any other answer a permanent one."""
        response = send_webhook(
            method="POST",
            url=self.url,
            headers={"Content-Type": "application/json"},
            body=canonical_json(payload),
            timeout=timeout,
        )
        error = classify_response(response.status, response.retry_after, utcnow())
        if error is not None:
            raise error
        return response
