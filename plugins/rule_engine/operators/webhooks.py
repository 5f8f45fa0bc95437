"""``call_webhook``: one task that calls an endpoint once per matched row (or once), exactly once per key.

Each delivery's ``webhook-id`` is the idempotency key of (rule, run, action, row), identical on every
retry; the delivery ledger in the rule store skips keys already delivered and keeps each request
(unsigned) for ``rule-compiler webhooks redeliver``, which sends through :func:`send_and_record` too.
Secrets and signature headers never reach logs, XCom, the automation log or the ledger: outputs carry
counts and statuses only.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa
from airflow.sdk.definitions.retry_policy import RetryDecision, RetryPolicy

from rule_compiler.clock import utcnow
from rule_compiler.errors import PermanentActionError
from rule_compiler.runtime.faults import faultpoint
from rule_compiler.runtime.webhook_requests import (
    Delivery,
    WebhookRequest,
    WebhookRetryableError,
    build_request,
    classify_response,
    finish_attempt,
    signature_headers,
    start_attempt,
    stored_request,
    truncate_body,
)
from rule_engine.hooks.webhook_client import WebhookHook, send_webhook
from rule_engine.operators.actions import ActionOperator, Match

#: Characters of a response body written to the task log.
LOGGED_BODY_CHARS = 300


class RetryAfterPolicy(RetryPolicy):
    """Retry a webhook when the receiver said when (Retry-After); otherwise Airflow's own backoff."""

    def evaluate(
        self, exception: BaseException, try_number: int, max_tries: int, context: Any = None
    ) -> RetryDecision:
        retry_after = getattr(exception, "retry_after", None)
        if isinstance(exception, WebhookRetryableError) and retry_after is not None:
            return RetryDecision.retry(
                delay=dt.timedelta(seconds=max(1.0, retry_after)), reason="the receiver sent Retry-After"
            )
        return RetryDecision.default()

    def serialize(self) -> dict[str, Any]:
        return {}


class WebhookOperator(ActionOperator):
    """Render, sign and send a webhook per target row; record every attempt in the delivery ledger."""

    ui_color = "#fef7e0"

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("retry_policy", RetryAfterPolicy())
        super().__init__(**kwargs)

    def run_action(self, context: Any, matches: list[Match]) -> dict[str, Any]:
        params = self.spec_params
        conn_id = params.get("connection")
        base_url, secrets = WebhookHook(conn_id).base_url_and_secrets() if conn_id else (None, [])
        ti = context.get("ti")
        self._final_try = ti is not None and ti.try_number > self.retries
        counts = {"delivered": 0, "already_delivered": 0, "failed": 0}
        statuses: set[int] = set()
        problems: list[str] = []
        for match, (record, event) in zip(matches, self.rows_of(matches), strict=True):
            key_text = match.key_text
            delivery = Delivery(
                match.effect_key(self.rule_id, self.task_id, kind=self.definition_kind),
                self.rule_id,
                self.task_id,
                match.occurrence,
                key_text,
            )
            context_of_row = self.template_context(context, record, event)
            try:
                request = build_request(params, context_of_row, base_url=base_url)
                outcome, status = self._deliver(delivery, request, secrets)
            except PermanentActionError as exc:
                problems.append(f"row {key_text}: {exc}")
                counts["failed"] += 1
                continue
            counts[outcome] += 1
            if status is not None:
                statuses.add(status)
        self.log.info("call_webhook: %s", counts)
        if problems:
            raise PermanentActionError("; ".join(problems[:10]) + (" ..." if len(problems) > 10 else ""))
        return {**counts, "statuses": sorted(statuses)}

    def _deliver(
        self, delivery: Delivery, request: WebhookRequest, secrets: list[str]
    ) -> tuple[str, int | None]:
        """Send one delivery unless the ledger says it was delivered; raise on failure."""
        engine = self.store.engine
        kept = stored_request(request, connection=self.spec_params.get("connection"))
        attempt = start_attempt(engine, delivery, utcnow(), request=kept)
        if attempt is None:
            return "already_delivered", None
        timeout = self.execution_timeout.total_seconds() if self.execution_timeout else 30.0
        result = send_and_record(
            engine,
            delivery.idempotency_key,
            request,
            secrets,
            attempt=attempt,
            timeout=timeout,
            log=self.log,
            final=getattr(self, "_final_try", False),
        )
        if result.error is not None:
            raise result.error
        return "delivered", result.status


class InfoLog(Protocol):
    """A task's logger or a :class:`logging.Logger`: what :func:`send_and_record` writes to."""

    def info(self, msg: Any, /, *args: Any) -> Any: ...


@dataclass(frozen=True)
class AttemptResult:
    """How one attempt ended: the ledger status, the HTTP status, and the error to raise (if any)."""

    ledger_status: str
    status: int | None
    error: Exception | None


def send_and_record(
    engine: sa.Engine,
    key: str,
    request: WebhookRequest,
    secrets: list[str],
    *,
    attempt: int,
    timeout: float,
    log: InfoLog,
    final: bool = False,
) -> AttemptResult:
    """Sign ``request`` as ``webhook-id: key`` (fresh timestamp), send it through the guarded
    transport and record the attempt's end in the delivery ledger. Transport failures raise.

    ``final``: no retry follows (the task's last try), so a retryable failure is recorded ``failed``.
    """
    retry_status = "failed" if final else "retrying"
    try:
        headers = {**request.headers, **signature_headers(secrets, key, utcnow(), request.body)}
        faultpoint("webhooks.before_send")
        response = send_webhook(
            method=request.method, url=request.url, headers=headers, body=request.body, timeout=timeout
        )
    except WebhookRetryableError as exc:
        finish_attempt(engine, key, status=retry_status, now=utcnow(), error=str(exc))
        raise
    except PermanentActionError as exc:
        finish_attempt(engine, key, status="failed", now=utcnow(), error=str(exc))
        raise
    faultpoint("webhooks.after_send_before_record")
    body_text = truncate_body(response.body)
    log.info(
        "webhook %s %s (key %s, attempt %d): HTTP %d in %d ms, body%s: %s",
        request.method,
        request.url.split("?", 1)[0],
        key[:12],
        attempt,
        response.status,
        response.elapsed_ms,
        " (truncated)" if response.truncated else "",
        body_text[:LOGGED_BODY_CHARS],
    )
    error = classify_response(response.status, response.retry_after, utcnow())
    status = "delivered" if error is None else retry_status
    if error is not None and not isinstance(error, WebhookRetryableError):
        status = "failed"
    finish_attempt(
        engine,
        key,
        status=status,
        now=utcnow(),
        response_status=response.status,
        response_body=body_text,
        error=str(error) if error is not None else None,
    )
    faultpoint("webhooks.after_record")
    return AttemptResult(status, response.status, error)
