"""Self-service over REST: your in-app inbox and your notification preferences (``/me/...``), and your
organization's notification delivery records (``/notifications/deliveries``, editors), a failed one
sent again (``…/{key}/redeliver``, :mod:`rule_engine.notification_redelivery`, shared with the CLI).

``/me`` routes act for the caller in the organization chosen as everywhere (``?organization=`` when
they belong to several). The recipient is their Airflow username, the name a notification's ``to``
gives for the in-app channel; the preferences of an email address stay with ``rule-compiler
notifications prefs``.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field

from rule_compiler.clock import utcnow
from rule_compiler.definitions.action_types import NotificationChannel
from rule_compiler.store import inbox as store_inbox
from rule_compiler.store import notifications as store_notifications
from rule_compiler.store import preferences as store_preferences
from rule_compiler.store.notifications import REDELIVERABLE_STATUSES
from rule_compiler.store.tables import DELIVERY_STATUSES
from rule_engine import notification_redelivery
from rule_engine.api.deps import Editor, StoreDep, Viewer
from rule_engine.api.routes.error_responses import errors
from rule_engine.api.schemas import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, OutModel, Page

router = APIRouter(tags=["self-service"])

DeliveryStatusName = Literal[
    "sending", "sent", "retrying", "failed", "muted", "deferred", "digest", "digested"
]
assert set(DeliveryStatusName.__args__) == set(DELIVERY_STATUSES)  # type: ignore[attr-defined]  # noqa: S101
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
MAX_MARKED = 1_000


class InboxMessagePublic(OutModel):
    id: int
    rule_id: str | None
    subject: str
    body: str
    created_at: dt.datetime
    read_at: dt.datetime | None


class InboxRead(BaseModel):
    """Which messages to mark read: ``ids``, or every unread one when left out."""

    model_config = ConfigDict(extra="forbid")

    ids: list[Annotated[int, Field(ge=1, le=2**62)]] | None = Field(default=None, max_length=MAX_MARKED)


class InboxMarked(OutModel):
    marked: int
    unread: int


class PreferencesIn(BaseModel):
    """Your preferences: muted channels, quiet hours (local ``HH:MM`` in ``timezone``; both or neither),
    and a daily digest of email and in-app messages at ``digest_hour``."""

    model_config = ConfigDict(extra="forbid")

    muted_channels: list[NotificationChannel] = Field(default_factory=list, max_length=10)
    quiet_start: str | None = Field(default=None, max_length=5, examples=["22:00"])
    quiet_end: str | None = Field(default=None, max_length=5, examples=["07:00"])
    timezone: str = Field(default="UTC", max_length=64, examples=["Europe/Paris"])
    digest: Literal["off", "daily"] = "off"
    digest_hour: int = Field(default=8, ge=0, le=23)


class PreferencesPublic(OutModel):
    """Your preferences; ``stored`` is false while you have none (every message is sent at once)."""

    recipient: str
    muted_channels: list[str]
    quiet_start: str | None
    quiet_end: str | None
    timezone: str
    digest: Literal["off", "daily"]
    digest_hour: int
    stored: bool


class DeliveryPublic(OutModel):
    """One notification delivery record: to whom on which channel, for which rule and action, how it went."""

    id: int
    key: str = Field(description="the delivery's idempotency key (what redeliver takes)")
    rule_id: str
    action_id: str
    channel: str
    recipient: str
    status: DeliveryStatusName
    attempts: int
    deliver_after: dt.datetime | None
    error: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    sent_at: dt.datetime | None
    redeliverable: bool = Field(description="failed or retrying, with its rendered message kept")


class NotificationRedeliveryPublic(OutModel):
    """How a redelivery went: the attempt, whether it was sent, the delivery's status now."""

    key: str
    channel: str
    attempt: int
    sent: bool
    status: DeliveryStatusName
    error: str | None


@router.get("/me/inbox", responses=errors())
def list_my_inbox(
    *,
    principal: Viewer,
    store: StoreDep,
    unread: Annotated[bool, Query(description="only unread messages")] = False,
    limit: Limit = DEFAULT_PAGE_SIZE,
    offset: Offset = 0,
) -> Page[InboxMessagePublic]:
    """Your in-app messages in this organization, newest first; ``total`` counts the unread ones."""
    found = store_inbox.list_inbox(
        store.engine,
        organization=principal.organization,
        recipient=principal.username,
        unread_only=unread,
        limit=limit + 1,
        offset=offset,
    )
    unread_count = store_inbox.count_unread(
        store.engine, organization=principal.organization, recipient=principal.username
    )
    return Page[InboxMessagePublic](
        items=[
            InboxMessagePublic(
                id=m.id,
                rule_id=m.rule_id,
                subject=m.subject,
                body=m.body,
                created_at=m.created_at,
                read_at=m.read_at,
            )
            for m in found[:limit]
        ],
        limit=limit,
        offset=offset,
        has_more=len(found) > limit,
        total=unread_count,
    )


@router.post("/me/inbox/read", responses=errors())
def mark_my_inbox_read(body: InboxRead, principal: Viewer, store: StoreDep) -> InboxMarked:
    """Mark your messages read: those of ``ids`` (others' ids are ignored), or every unread one."""
    marked = store_inbox.mark_read(
        store.engine,
        organization=principal.organization,
        recipient=principal.username,
        ids=body.ids,
        now=utcnow(),
    )
    unread = store_inbox.count_unread(
        store.engine, organization=principal.organization, recipient=principal.username
    )
    return InboxMarked(marked=marked, unread=unread)


def _public(prefs: store_preferences.Preferences, *, stored: bool) -> PreferencesPublic:
    data = prefs.as_dict()
    return PreferencesPublic(
        recipient=prefs.recipient,
        muted_channels=data["muted_channels"],
        quiet_start=data["quiet_start"],
        quiet_end=data["quiet_end"],
        timezone=prefs.timezone,
        digest=prefs.digest,
        digest_hour=prefs.digest_hour,
        stored=stored,
    )


@router.get("/me/preferences", responses=errors())
def read_my_preferences(principal: Viewer, store: StoreDep) -> PreferencesPublic:
    """Your notification preferences in this organization (the defaults while you have none)."""
    prefs = store_preferences.get_preferences(store.engine, principal.organization, principal.username)
    if prefs is None:
        return _public(
            store_preferences.Preferences(organization=principal.organization, recipient=principal.username),
            stored=False,
        )
    return _public(prefs, stored=True)


@router.put("/me/preferences", responses=errors())
def write_my_preferences(body: PreferencesIn, principal: Viewer, store: StoreDep) -> PreferencesPublic:
    """Replace your preferences (fields left out take their defaults); 422 says what is wrong."""
    try:
        prefs = store_preferences.parse_preferences(
            body.model_dump(), organization=principal.organization, recipient=principal.username
        )
    except store_preferences.PreferencesError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    store_preferences.set_preferences(store.engine, prefs, actor=principal.username, now=utcnow())
    return _public(prefs, stored=True)


@router.delete("/me/preferences", status_code=status.HTTP_204_NO_CONTENT, responses=errors())
def clear_my_preferences(principal: Viewer, store: StoreDep) -> Response:
    """Remove your preferences: every message is sent at once again."""
    store_preferences.delete_preferences(store.engine, principal.organization, principal.username)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/notifications/deliveries", responses=errors())
def list_notification_deliveries(
    *,
    principal: Editor,
    store: StoreDep,
    status_: Annotated[DeliveryStatusName | None, Query(alias="status")] = None,
    rule: Annotated[str | None, Query(max_length=200, description="a rule's name")] = None,
    channel: NotificationChannel | None = None,
    recipient: Annotated[str | None, Query(max_length=320)] = None,
    limit: Limit = DEFAULT_PAGE_SIZE,
    offset: Offset = 0,
) -> Page[DeliveryPublic]:
    """Your organization's notification delivery records, newest first (editors: they name recipients)."""
    rows = store_notifications.list_deliveries(
        store.engine,
        organization=principal.organization,
        status=status_,
        rule_id=None if rule is None else f"{principal.organization}/{rule}",
        channel=channel,
        recipient=recipient,
        limit=limit + 1,
        offset=offset,
    )
    return Page[DeliveryPublic](
        items=[
            DeliveryPublic(
                id=row.id,
                key=row.idempotency_key,
                rule_id=row.rule_id,
                action_id=row.action_id,
                channel=row.channel,
                recipient=row.recipient,
                status=row.status,
                attempts=row.attempts,
                deliver_after=row.deliver_after,
                error=row.error,
                created_at=row.created_at,
                updated_at=row.updated_at,
                sent_at=row.sent_at,
                redeliverable=row.status in REDELIVERABLE_STATUSES and row.message is not None,
            )
            for row in rows[:limit]
        ],
        limit=limit,
        offset=offset,
        has_more=len(rows) > limit,
    )


@router.post("/notifications/deliveries/{key}/redeliver", responses=errors(409))
def redeliver_notification(
    key: Annotated[str, Path(pattern=r"^[0-9a-f]{64}$", description="the delivery's key")],
    principal: Editor,
    store: StoreDep,
) -> NotificationRedeliveryPublic:
    """Send a failed (or retrying) delivery again, as it was rendered, on its channel; the attempt is
    recorded on the delivery and in the audit log. 404 for a key not in your organization; 409 when it
    was sent (or is muted, queued...), or kept no rendered message. 200 also when the channel still
    refuses it (``sent: false``: the attempt is recorded)."""
    row = notification_redelivery.prepare(store.engine, key, organization=principal.organization)
    outcome = notification_redelivery.redeliver(store, row, actor=principal.username)
    return NotificationRedeliveryPublic(
        key=key,
        channel=outcome.channel,
        attempt=outcome.attempt,
        sent=outcome.sent,
        status=outcome.status,
        error=outcome.error,
    )
