"""Recipient preferences in the rule store (what :func:`rule_compiler.runtime.preferences.decide` reads)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from rule_compiler.runtime.preferences import Preferences, format_time, parse_time
from rule_compiler.store._bookkeeping import transaction
from rule_compiler.store._json import loads, log_json
from rule_compiler.store.runs import upsert
from rule_compiler.store.schema import notification_preferences as prefs_table


def get_preferences(engine: sa.Engine, organization: str, recipient: str) -> Preferences | None:
    """A recipient's stored preferences, or None (no preferences: every message is sent)."""
    query = sa.select(prefs_table).where(
        prefs_table.c.organization == organization, prefs_table.c.recipient == recipient
    )
    with transaction(engine) as conn:
        row = conn.execute(query).first()
    if row is None:
        return None
    return Preferences(
        organization=row.organization,
        recipient=row.recipient,
        muted_channels=frozenset(loads(row.muted_channels_json) or ()),
        quiet_start=parse_time(row.quiet_start, field="quiet_start") if row.quiet_start else None,
        quiet_end=parse_time(row.quiet_end, field="quiet_end") if row.quiet_end else None,
        timezone=row.timezone,
        digest=row.digest,
        digest_hour=int(row.digest_hour),
    )


def set_preferences(engine: sa.Engine, prefs: Preferences, *, actor: str, now: dt.datetime) -> None:
    """Create or replace a recipient's preferences."""
    values = {
        "muted_channels_json": log_json(sorted(prefs.muted_channels)),
        "quiet_start": format_time(prefs.quiet_start),
        "quiet_end": format_time(prefs.quiet_end),
        "timezone": prefs.timezone,
        "digest": prefs.digest,
        "digest_hour": prefs.digest_hour,
        "updated_by": actor,
        "updated_at": now,
    }
    with transaction(engine, write=True) as conn:
        conn.execute(
            upsert(conn, prefs_table)
            .values(organization=prefs.organization, recipient=prefs.recipient, **values)
            .on_conflict_do_update(
                index_elements=[prefs_table.c.organization, prefs_table.c.recipient], set_=values
            )
        )


def delete_preferences(engine: sa.Engine, organization: str, recipient: str) -> bool:
    """Remove a recipient's preferences; False when there were none."""
    with transaction(engine, write=True) as conn:
        deleted = conn.execute(
            prefs_table.delete().where(
                prefs_table.c.organization == organization, prefs_table.c.recipient == recipient
            )
        ).rowcount
    return bool(deleted)
