"""Recipient notification preferences and what they decide for one message (pure: no I/O).

A recipient (an email address or an in-app user name, exactly as written in an action's ``to``) of
an organization may mute channels, set quiet hours in their own time zone, and ask for a daily
digest. :func:`decide` turns those into one decision per (message, channel, recipient):

1. ``muted``: the channel is muted; the message is recorded, never sent;
2. ``digest``: daily digest is on and the channel is ``email`` or ``in_app``: the message waits for
   the next digest time (:func:`next_digest_at`), which ignores quiet hours (the recipient chose it);
3. ``deferred``: now is inside the quiet window: the message waits until the window ends;
4. ``send``.

Wall times are local to the recipient's IANA time zone and converted with :mod:`zoneinfo`, so
daylight-saving changes are honoured: a wall time the clocks skip maps to the instant they jump past
it, and a wall time that happens twice ends a quiet window at its next occurrence.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rule_compiler.definitions.action_types import NOTIFICATION_CHANNELS
from rule_compiler.errors import InvalidValueError
from rule_compiler.store.schema import DIGEST_MODES

Decision = Literal["send", "muted", "deferred", "digest"]
DigestMode = Literal["off", "daily"]
#: Channels a daily digest gathers; slack and webhook messages go to a connection, not a person.
DIGEST_CHANNELS = frozenset({"email", "in_app"})
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


def decide(prefs: Preferences | None, channel: str, now: dt.datetime) -> tuple[Decision, dt.datetime | None]:
    """What to do with one message on ``channel`` for the recipient of ``prefs`` at ``now``.

    ``("muted", None)``, ``("digest", next digest time)``, ``("deferred", end of the quiet window)``
    or ``("send", None)``, in that order of precedence (times in UTC). No preferences: send.
    """
    _check_aware(now)
    if prefs is None:
        return "send", None
    if channel in prefs.muted_channels:
        return "muted", None
    if prefs.digest == "daily" and channel in DIGEST_CHANNELS:
        return "digest", next_digest_at(prefs, now)
    end = quiet_window_end(prefs, now)
    if end is not None:
        return "deferred", end
    return "send", None


def quiet_window_end(prefs: Preferences, now: dt.datetime) -> dt.datetime | None:
    """When the quiet window ``now`` is in ends (UTC); None without quiet hours or outside the window.

    The window is ``[quiet_start, quiet_end)`` on the local wall clock and crosses midnight when
    ``quiet_start > quiet_end`` (22:00-07:00).
    """
    _check_aware(now)
    start, end = prefs.quiet_start, prefs.quiet_end
    if start is None or end is None:
        return None
    tz = prefs.zone
    local = now.astimezone(tz)
    wall = local.time()
    if start < end:
        inside, end_day = start <= wall < end, local.date()
    else:
        inside = wall >= start or wall < end
        end_day = local.date() + dt.timedelta(days=1) if wall >= start else local.date()
    if not inside:
        return None
    # After a fall-back change the end's wall time happens twice: the next occurrence after now.
    for fold in (0, 1):
        candidate = _instant(end_day, end, tz, fold=fold)
        if candidate > now:
            return candidate
    return None  # pragma: no cover - a wall time inside the window always ends after now


def next_digest_at(prefs: Preferences, now: dt.datetime) -> dt.datetime:
    """The first local ``digest_hour:00`` strictly after ``now``, in UTC (once per local day)."""
    _check_aware(now)
    tz = prefs.zone
    hour = dt.time(prefs.digest_hour)
    day = now.astimezone(tz).date()
    for offset in range(3):
        candidate = _instant(day + dt.timedelta(days=offset), hour, tz, fold=0)
        if candidate > now:
            return candidate
    raise AssertionError("unreachable: a local hour recurs within two days")  # pragma: no cover


def _instant(day: dt.date, wall: dt.time, tz: ZoneInfo, *, fold: int) -> dt.datetime:
    """The UTC instant the local clock shows ``day wall`` (``fold`` picks a repeated wall time's pass).

    A wall time skipped by a spring-forward change maps to the instant of the change, the first
    moment the clock shows a later time.
    """
    naive = dt.datetime.combine(day, wall)
    utc = naive.replace(tzinfo=tz, fold=fold).astimezone(dt.UTC)
    if utc.astimezone(tz).replace(tzinfo=None) == naive:
        return utc
    # In a gap, fold=1 reads as before the change and fold=0 as after it: bisect to the second.
    low = naive.replace(tzinfo=tz, fold=1).astimezone(dt.UTC)
    high = naive.replace(tzinfo=tz, fold=0).astimezone(dt.UTC)
    while high - low > dt.timedelta(seconds=1):
        middle = low + dt.timedelta(seconds=(high - low) // dt.timedelta(seconds=2))
        if middle.astimezone(tz).replace(tzinfo=None) >= naive:
            high = middle
        else:
            low = middle
    return high


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


def _check_aware(now: dt.datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"naive datetime {now!r}: pass a timezone-aware time")
