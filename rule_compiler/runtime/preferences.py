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
it, and a wall time that happens twice ends a quiet window at its next occurrence. The record itself,
its parsing and its rows are the store's (:mod:`rule_compiler.store.preferences`).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal
from zoneinfo import ZoneInfo

from rule_compiler.store.preferences import Preferences

Decision = Literal["send", "muted", "deferred", "digest"]
#: Channels a daily digest gathers; slack and webhook messages go to a connection, not a person.
DIGEST_CHANNELS = frozenset({"email", "in_app"})


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


def _check_aware(now: dt.datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"naive datetime {now!r}: pass a timezone-aware time")
