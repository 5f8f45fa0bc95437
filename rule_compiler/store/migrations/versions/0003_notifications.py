"""Notifications: delivery records, the in-app inbox, recipient preferences; stored webhook requests.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 00:00:00

- ``notification_deliveries``: one row per (effect, channel, recipient), keyed by its idempotency key,
  holding the rendered message while it waits (quiet hours, digest) and every attempt's outcome.
- ``notification_inbox``: the ``in_app`` channel's messages, read and marked read through the REST view.
- ``notification_preferences``: per recipient of an organization: muted channels, quiet hours in a
  time zone, a daily digest.
- ``rule_engine_webhook_deliveries`` gains the organization and the request as sent (without its
  signature headers) so a delivery can be redelivered from the CLI.

History: it never imports the package's current schema.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_Now = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "notification_deliveries",
        sa.Column("id", _Id, primary_key=True),
        sa.Column("idempotency_key", sa.String(64), nullable=False),
        sa.Column("organization", sa.String(200), nullable=False),
        sa.Column("rule_id", sa.String(200), nullable=False),
        sa.Column("action_id", sa.String(100), nullable=False),
        sa.Column("occurrence_id", sa.String(250), nullable=False),
        sa.Column("row_key", sa.Text, nullable=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("message_json", sa.Text, nullable=True),
        sa.Column("deliver_after", _Now, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("created_at", _Now, nullable=False),
        sa.Column("updated_at", _Now, nullable=False),
        sa.Column("sent_at", _Now, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_notification_deliveries"),
        sa.UniqueConstraint("idempotency_key", name="uq_notification_deliveries_idempotency_key"),
        sa.CheckConstraint(
            "status IN ('sending', 'sent', 'retrying', 'failed', 'muted', 'deferred', 'digest', "
            "'digested')",
            name="ck_notification_deliveries_status",
        ),
    )
    op.create_index(
        "ix_notification_deliveries_status_deliver_after",
        "notification_deliveries",
        ["status", "deliver_after"],
    )
    op.create_index(
        "ix_notification_deliveries_organization_recipient_status",
        "notification_deliveries",
        ["organization", "recipient", "status"],
    )
    op.create_table(
        "notification_inbox",
        sa.Column("id", _Id, primary_key=True),
        sa.Column("idempotency_key", sa.String(64), nullable=False),
        sa.Column("organization", sa.String(200), nullable=False),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("rule_id", sa.String(200), nullable=True),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", _Now, nullable=False),
        sa.Column("read_at", _Now, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_notification_inbox"),
        sa.UniqueConstraint("idempotency_key", name="uq_notification_inbox_idempotency_key"),
    )
    op.create_index(
        "ix_notification_inbox_organization_recipient_read_at",
        "notification_inbox",
        ["organization", "recipient", "read_at"],
    )
    op.create_table(
        "notification_preferences",
        sa.Column("organization", sa.String(200), nullable=False),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("muted_channels_json", sa.Text, nullable=False),
        sa.Column("quiet_start", sa.String(5), nullable=True),
        sa.Column("quiet_end", sa.String(5), nullable=True),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("digest", sa.String(8), nullable=False),
        sa.Column("digest_hour", sa.Integer, nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=False),
        sa.Column("updated_at", _Now, nullable=False),
        sa.PrimaryKeyConstraint("organization", "recipient", name="pk_notification_preferences"),
        sa.CheckConstraint("digest IN ('off', 'daily')", name="ck_notification_preferences_digest"),
    )
    with op.batch_alter_table("rule_engine_webhook_deliveries") as batch:
        batch.add_column(sa.Column("organization", sa.String(200), nullable=True))
        batch.add_column(sa.Column("request_json", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("rule_engine_webhook_deliveries") as batch:
        batch.drop_column("request_json")
        batch.drop_column("organization")
    op.drop_table("notification_preferences")
    op.drop_index("ix_notification_inbox_organization_recipient_read_at", "notification_inbox")
    op.drop_table("notification_inbox")
    op.drop_index("ix_notification_deliveries_organization_recipient_status", "notification_deliveries")
    op.drop_index("ix_notification_deliveries_status_deliver_after", "notification_deliveries")
    op.drop_table("notification_deliveries")
