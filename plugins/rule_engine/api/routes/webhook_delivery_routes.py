"""``/webhooks/deliveries``: your organization's webhook delivery ledger, and sending a stored request
again (editors), as ``rule-compiler webhooks deliveries`` and ``webhooks redeliver`` do."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query, status

from rule_compiler.errors import PermanentActionError
from rule_compiler.runtime.webhook_requests import RedeliveryRefusedError, delivery_row, list_deliveries
from rule_engine.api.deps import Editor, StoreDep
from rule_engine.api.routes.error_responses import errors
from rule_engine.api.schemas import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, OutModel, Page
from rule_engine.webhook_redelivery import belongs_to, prepare, redeliver

router = APIRouter(prefix="/webhooks/deliveries", tags=["webhooks"])

LedgerStatus = Literal["sending", "delivered", "retrying", "failed"]
Key = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$", description="the delivery's key (its webhook-id)")]


class WebhookDeliveryPublic(OutModel):
    """One webhook delivery: its key (the ``webhook-id`` header), rule and action, how it stands."""

    key: str
    rule_id: str
    action_id: str
    occurrence_id: str
    row_key: str | None
    status: str
    attempts: int
    response_status: int | None
    error: str | None
    updated_at: dt.datetime
    redeliverable: bool


class WebhookRedeliveryPublic(OutModel):
    """How a redelivery went: the attempt, the HTTP status (null when nothing answered), the ledger."""

    key: str
    attempt: int
    delivered: bool
    http_status: int | None
    ledger_status: str
    error: str | None


@router.get("", responses=errors())
def list_webhook_deliveries(
    *,
    principal: Editor,
    store: StoreDep,
    status_: Annotated[LedgerStatus | None, Query(alias="status")] = None,
    rule: Annotated[str | None, Query(max_length=200, description="a rule's name")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
) -> Page[WebhookDeliveryPublic]:
    """The ledger, most recently updated first (editors: stored requests name URLs)."""
    rows = list_deliveries(
        store.engine,
        organization=principal.organization,
        status=status_,
        rule_id=None if rule is None else f"{principal.organization}/{rule}",
        limit=limit + 1,
    )
    items = [
        WebhookDeliveryPublic(
            key=row["idempotency_key"],
            rule_id=row["rule_id"],
            action_id=row["action_id"],
            occurrence_id=row["occurrence_id"],
            row_key=row["row_key"],
            status=row["status"],
            attempts=row["attempts"],
            response_status=row["response_status"],
            error=row["error"],
            updated_at=row["updated_at"],
            redeliverable=bool(row.get("request_json")),
        )
        for row in rows[:limit]
    ]
    return Page[WebhookDeliveryPublic](items=items, limit=limit, offset=0, has_more=len(rows) > limit)


@router.post("/{key}/redeliver", responses=errors())
def redeliver_webhook(
    *,
    key: Key,
    principal: Editor,
    store: StoreDep,
    force: Annotated[bool, Query(description="send a delivery that was already delivered")] = False,
) -> WebhookRedeliveryPublic:
    """Send the delivery's stored request again: the same ``webhook-id``, a fresh timestamp and
    signature (the connection's current secrets), through the SSRF-guarded transport; the attempt is
    recorded in the ledger and the audit log. 404 for a key not in your organization; 409 when it
    cannot be redelivered (no stored request; already delivered without ``force``)."""
    found = delivery_row(store.engine, key)
    if found is None or not belongs_to(found, principal.organization):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no webhook delivery {key} in your organization")
    try:
        row = prepare(store.engine, key, force=force, organization=principal.organization)
        outcome = redeliver(store.engine, row, force=force)
    except (RedeliveryRefusedError, PermanentActionError) as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    store.record_audit(
        organization=principal.organization,
        actor=principal.username,
        action="update",
        kind="webhook_delivery",
        name=key,
        version=None,
        detail={
            "redelivered": True,
            "attempt": outcome.attempt,
            "delivered": outcome.delivered,
            "http_status": outcome.http_status,
            "force": force,
        },
    )
    return WebhookRedeliveryPublic(
        key=outcome.key,
        attempt=outcome.attempt,
        delivered=outcome.delivered,
        http_status=outcome.http_status,
        ledger_status=outcome.ledger_status,
        error=outcome.error,
    )
