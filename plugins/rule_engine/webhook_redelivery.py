"""Send a webhook delivery's stored request again: what ``rule-compiler webhooks redeliver`` and
``POST /webhooks/deliveries/{key}/redeliver`` share.

The same ``webhook-id``, a fresh timestamp and a signature from the connection's current secrets,
through the same SSRF-guarded transport as the action; the attempt is recorded in the delivery
ledger. A delivery already delivered is sent again only with ``force``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from rule_compiler.clock import utcnow
from rule_compiler.errors import PermanentActionError
from rule_compiler.runtime.webhook_requests import (
    RedeliveryRefusedError,
    WebhookRetryableError,
    find_delivery,
    request_from_stored,
    start_redelivery,
    stored_request_of,
)

#: Longest call of a redelivery (the action's own timeout is not known here).
REDELIVERY_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class Redelivery:
    """How a redelivery went: the attempt number, the HTTP status (None when nothing answered), and
    what the ledger now says."""

    key: str
    rule_id: str
    action_id: str
    method: str
    target: str
    attempt: int
    delivered: bool
    http_status: int | None
    ledger_status: str
    error: str | None


class _Quiet:
    """The attempt's task-log line is not wanted here (it names the URL)."""

    def info(self, msg: Any, /, *args: Any) -> None:
        pass


def prepare(engine: sa.Engine, key: str, *, force: bool, organization: str | None = None) -> dict[str, Any]:
    """The ledger row of ``key`` (a full key or a unique prefix) if it may be redelivered; raises
    :class:`RedeliveryRefusedError` (unknown, another organization's, no stored request, delivered)."""
    row = find_delivery(engine, key)
    if organization is not None and not belongs_to(row, organization):
        raise RedeliveryRefusedError(f"no webhook delivery {key} in organization '{organization}'")
    stored_request_of(row)
    if row["status"] == "delivered" and not force:
        raise RedeliveryRefusedError(
            f"delivery {row['idempotency_key']} was already delivered; to send it again anyway use "
            "--force (CLI) or ?force=true (REST): receivers that deduplicate on webhook-id will ignore it"
        )
    return row


def belongs_to(row: dict[str, Any], organization: str) -> bool:
    """Whether a ledger row is the organization's (rows recorded before the column by their rule's id)."""
    if row.get("organization") is not None:
        return bool(row["organization"] == organization)
    return str(row["rule_id"]).startswith(f"{organization}/")


def redeliver(engine: sa.Engine, row: dict[str, Any], *, force: bool) -> Redelivery:
    """Send the stored request of a row :func:`prepare` returned and record the attempt."""
    from rule_engine.operators.webhooks import send_and_record

    stored = stored_request_of(row)
    key = str(row["idempotency_key"])
    conn_id = stored.get("connection")
    base_url, secrets = connection_of(str(conn_id)) if conn_id else (None, [])
    request = request_from_stored(stored, base_url=base_url)
    attempt = start_redelivery(engine, key, utcnow(), force=force)
    target = f"{conn_id}:{stored.get('path') or '/'}" if conn_id else request.url.split("?", 1)[0]

    def outcome(delivered: bool, status: int | None, ledger: str, error: str | None) -> Redelivery:
        return Redelivery(
            key,
            str(row["rule_id"]),
            str(row["action_id"]),
            request.method,
            target,
            attempt,
            delivered,
            status,
            ledger,
            error,
        )

    try:
        result = send_and_record(
            engine, key, request, secrets, attempt=attempt, timeout=REDELIVERY_TIMEOUT_SECONDS, log=_Quiet()
        )
    except WebhookRetryableError as exc:
        return outcome(False, None, "retrying", str(exc))
    except PermanentActionError as exc:
        return outcome(False, None, "failed", str(exc))
    error = None if result.error is None else str(result.error)
    return outcome(result.error is None, result.status, result.ledger_status, error)


def connection_of(conn_id: str) -> tuple[str, list[str]]:
    """Base URL and current signing secrets of an Airflow connection (the secrets are never shown);
    :class:`RedeliveryRefusedError` when it is not defined."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from airflow.sdk.exceptions import AirflowNotFoundException

        from rule_engine.hooks.webhook_client import WebhookHook

        try:
            return WebhookHook(conn_id).base_url_and_secrets()
        except AirflowNotFoundException:
            raise RedeliveryRefusedError(
                f"Airflow connection '{conn_id}' is not defined (set AIRFLOW_CONN_{conn_id.upper()} "
                "or add it with `airflow connections add`)"
            ) from None
