"""Recipient notification preferences: the record (:class:`Preferences`, validated on construction),
its text forms (:func:`parse_preferences`, ``"HH:MM"`` times), and its rows in the rule store.

A recipient (an email address or an in-app user name, exactly as written in an action's ``to``) of
an organization may mute channels, set quiet hours in their own time zone, and ask for a daily
digest. What they decide for one message is :func:`rule_compiler.runtime.preferences.decide`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa

from rule_compiler.definitions.action_types import NOTIFICATION_CHANNELS
from rule_compiler.errors import InvalidValueError
from rule_compiler.store._bookkeeping import transaction
from rule_compiler.store._json import loads, log_json
from rule_compiler.store.runs import upsert
from rule_compiler.store.tables import DIGEST_MODES
from rule_compiler.store.tables import notification_preferences as prefs_table

DigestMode = Literal["off", "daily"]
#: Keys :func:`parse_preferences` accepts (``quiet`` is ``"22:00-07:00"``, both ends at once).
PREFERENCE_KEYS = ("muted_channels", "quiet", "quiet_start", "quiet_end", "timezone", "digest", "digest_hour")
MAX_RECIPIENT = 320
MAX_ORGANIZATION = 200
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")

assert set(get_args(DigestMode)) == set(DIGEST_MODES)  # noqa: S101 - one list of modes


class PreferencesError(InvalidValueError):
    """Preferences that cannot be accepted; the message names the field and what is allowed."""


@dataclass(frozen=True)
class Preferences:
    """One recipient's preferences in one organization (validated on construction)."""

    organization: str
    recipient: str
    muted_channels: frozenset[str] = frozenset()
    quiet_start: dt.time | None = None
    quiet_end: dt.time | None = None
    timezone: str = "UTC"
    digest: DigestMode = "off"
    digest_hour: int = 8

    def __post_init__(self) -> None:
        _check_name("organization", self.organization, MAX_ORGANIZATION)
        _check_name("recipient", self.recipient, MAX_RECIPIENT)
        unknown = sorted(set(self.muted_channels) - set(NOTIFICATION_CHANNELS))
        if unknown:
            raise PreferencesError(
                f"muted_channels: unknown channel {', '.join(map(repr, unknown))} "
                f"(channels: {', '.join(NOTIFICATION_CHANNELS)})"
            )
        if (self.quiet_start is None) != (self.quiet_end is None):
            raise PreferencesError("quiet hours need both quiet_start and quiet_end (or neither)")
        for name, value in (("quiet_start", self.quiet_start), ("quiet_end", self.quiet_end)):
            if value is not None and (value.second or value.microsecond or value.tzinfo is not None):
                raise PreferencesError(f"{name} must be a local wall time in whole minutes ('HH:MM')")
        if self.quiet_start is not None and self.quiet_start == self.quiet_end:
            raise PreferencesError("quiet_start and quiet_end must differ (the window would be empty)")
        zone(self.timezone)
        if self.digest not in DIGEST_MODES:
            raise PreferencesError(f"digest must be one of {', '.join(DIGEST_MODES)}, not {self.digest!r}")
        if isinstance(self.digest_hour, bool) or not isinstance(self.digest_hour, int):
            raise PreferencesError(f"digest_hour must be a whole hour 0..23, not {self.digest_hour!r}")
        if not 0 <= self.digest_hour <= 23:
            raise PreferencesError(f"digest_hour must be between 0 and 23, not {self.digest_hour}")

    @property
    def zone(self) -> ZoneInfo:
        """The recipient's time zone."""
        return zone(self.timezone)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields (times as ``"HH:MM"``), the form :func:`parse_preferences` reads back."""
        return {
            "organization": self.organization,
            "recipient": self.recipient,
            "muted_channels": sorted(self.muted_channels),
            "quiet_start": format_time(self.quiet_start),
            "quiet_end": format_time(self.quiet_end),
            "timezone": self.timezone,
            "digest": self.digest,
            "digest_hour": self.digest_hour,
        }


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``; PreferencesError when unknown."""
    if not isinstance(name, str) or not name:
        raise PreferencesError(f"timezone must be an IANA name such as 'Europe/Berlin', not {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise PreferencesError(
            f"timezone {name!r} is not a known time zone: use an IANA name such as 'UTC' or 'Europe/Berlin'"
        ) from None


def parse_time(value: Any, *, field: str) -> dt.time:
    """``"HH:MM"`` (00:00 to 23:59) as a time; PreferencesError naming ``field`` otherwise."""
    if isinstance(value, dt.time):
        return value
    text = value.strip() if isinstance(value, str) else None
    match = _HHMM.match(text) if text is not None else None
    if match is None:
        hint = " (quote it in YAML: an unquoted 22:00 is read as a number)" if isinstance(value, int) else ""
        raise PreferencesError(f"{field} must be a time 'HH:MM' between 00:00 and 23:59, not {value!r}{hint}")
    return dt.time(int(match.group(1)), int(match.group(2)))


def parse_quiet(value: str, *, field: str = "quiet") -> tuple[dt.time, dt.time]:
    """``"22:00-07:00"`` as (start, end); a window may cross midnight."""
    parts = value.split("-") if isinstance(value, str) else []
    if len(parts) != 2:
        raise PreferencesError(f"{field} must be 'HH:MM-HH:MM' (for example 22:00-07:00), not {value!r}")
    return parse_time(parts[0], field=field), parse_time(parts[1], field=field)


def format_time(value: dt.time | None) -> str | None:
    """A wall time as ``"HH:MM"`` (None stays None)."""
    return None if value is None else value.strftime("%H:%M")


def parse_preferences(data: Mapping[str, Any], *, organization: str, recipient: str) -> Preferences:
    """Preferences from a JSON/YAML mapping (keys: :data:`PREFERENCE_KEYS`); PreferencesError when invalid.

    Missing keys take their defaults. ``quiet: "22:00-07:00"`` is ``quiet_start`` plus ``quiet_end``;
    ``quiet: null`` (or both ends null) means no quiet hours.
    """
    if not isinstance(data, Mapping):
        raise PreferencesError(f"preferences must be a mapping, not {type(data).__name__}")
    unknown = sorted(str(k) for k in data if k not in PREFERENCE_KEYS)
    if unknown:
        raise PreferencesError(
            f"unknown preference {', '.join(map(repr, unknown))} (allowed: {', '.join(PREFERENCE_KEYS)})"
        )
    quiet_start = quiet_end = None
    if data.get("quiet") is not None:
        if data.get("quiet_start") is not None or data.get("quiet_end") is not None:
            raise PreferencesError("give either quiet or quiet_start/quiet_end, not both")
        quiet_start, quiet_end = parse_quiet(data["quiet"])
    else:
        if data.get("quiet_start") is not None:
            quiet_start = parse_time(data["quiet_start"], field="quiet_start")
        if data.get("quiet_end") is not None:
            quiet_end = parse_time(data["quiet_end"], field="quiet_end")
    digest_hour = data.get("digest_hour", 8)
    if isinstance(digest_hour, str) and digest_hour.strip().isdigit():
        digest_hour = int(digest_hour)
    return Preferences(
        organization=organization,
        recipient=recipient,
        muted_channels=_channels(data.get("muted_channels") or ()),
        quiet_start=quiet_start,
        quiet_end=quiet_end,
        timezone=data.get("timezone") or "UTC",
        digest=data.get("digest") or "off",
        digest_hour=digest_hour,
    )


def _channels(value: Any) -> frozenset[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, Iterable) or isinstance(value, Mapping):
        raise PreferencesError(f"muted_channels must be a list of channels, not {value!r}")
    channels = list(value)
    if not all(isinstance(c, str) for c in channels):
        raise PreferencesError(f"muted_channels must be a list of channel names, not {channels!r}")
    return frozenset(channels)


def _check_name(field: str, value: Any, limit: int) -> None:
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise PreferencesError(f"{field} must be a non-empty text of at most {limit} characters")


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
