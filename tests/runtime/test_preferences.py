"""Recipient preferences: mute, quiet hours (across midnight and DST changes), daily digest, parsing."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rule_compiler.definitions.action_types import NOTIFICATION_CHANNELS
from rule_compiler.runtime.preferences import decide, next_digest_at, quiet_window_end
from rule_compiler.store.preferences import Preferences, PreferencesError, parse_preferences

UTC = dt.UTC
BERLIN = "Europe/Berlin"  # 2026: CET→CEST 29 March 02:00→03:00; CEST→CET 25 October 03:00→02:00


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=UTC)


def prefs(**fields: object) -> Preferences:
    return Preferences(organization="acme", recipient="ann@example.com", **fields)  # type: ignore[arg-type]


def quiet(start: str, end: str, timezone: str = BERLIN, **fields: object) -> Preferences:
    return prefs(
        quiet_start=dt.time.fromisoformat(start),
        quiet_end=dt.time.fromisoformat(end),
        timezone=timezone,
        **fields,
    )


# --- decide ---------------------------------------------------------------------------------------


def test_no_preferences_always_send() -> None:
    assert decide(None, "email", at(2026, 1, 1, 3)) == ("send", None)


def test_muted_channel_wins_over_digest_and_quiet_hours() -> None:
    p = quiet("22:00", "07:00", muted_channels=frozenset({"email"}), digest="daily")
    night = at(2026, 1, 10, 23)
    assert decide(p, "email", night) == ("muted", None)
    assert decide(p, "in_app", night) == ("digest", at(2026, 1, 11, 7))  # 08:00 CET
    assert decide(p, "slack", night) == ("deferred", at(2026, 1, 11, 6))  # 07:00 CET


def test_digest_gathers_only_email_and_in_app() -> None:
    p = prefs(digest="daily", digest_hour=9)
    noon = at(2026, 5, 4, 12)
    assert decide(p, "email", noon) == ("digest", at(2026, 5, 5, 9))
    assert decide(p, "in_app", noon) == ("digest", at(2026, 5, 5, 9))
    assert decide(p, "slack", noon) == ("send", None)
    assert decide(p, "webhook", noon) == ("send", None)


def test_outside_quiet_hours_sends() -> None:
    p = quiet("22:00", "07:00")
    assert decide(p, "email", at(2026, 1, 10, 12)) == ("send", None)


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        decide(prefs(), "email", dt.datetime(2026, 1, 1, 12))


# --- quiet windows --------------------------------------------------------------------------------


def test_same_day_window_start_inclusive_end_exclusive() -> None:
    p = quiet("09:00", "17:00", "UTC")
    assert quiet_window_end(p, at(2026, 6, 1, 8, 59)) is None
    assert quiet_window_end(p, at(2026, 6, 1, 9, 0)) == at(2026, 6, 1, 17)
    assert quiet_window_end(p, at(2026, 6, 1, 16, 59)) == at(2026, 6, 1, 17)
    assert quiet_window_end(p, at(2026, 6, 1, 17, 0)) is None


def test_window_across_midnight_ends_on_the_right_day() -> None:
    p = quiet("22:00", "07:00")  # Berlin, winter: UTC+1
    assert quiet_window_end(p, at(2026, 1, 10, 20, 59)) is None  # 21:59 local
    assert quiet_window_end(p, at(2026, 1, 10, 21, 0)) == at(2026, 1, 11, 6)  # 22:00 → next morning
    assert quiet_window_end(p, at(2026, 1, 10, 23, 30)) == at(2026, 1, 11, 6)  # 00:30 local, next day
    assert quiet_window_end(p, at(2026, 1, 11, 5, 59)) == at(2026, 1, 11, 6)  # 06:59 local
    assert quiet_window_end(p, at(2026, 1, 11, 6, 0)) is None


def test_window_across_the_spring_forward_night_ends_at_local_seven() -> None:
    p = quiet("22:00", "07:00")
    # 22:30 CET on 28 March; the clocks jump that night, so 07:00 is CEST (UTC+2) = 05:00 UTC.
    assert quiet_window_end(p, at(2026, 3, 28, 21, 30)) == at(2026, 3, 29, 5)
    assert quiet_window_end(p, at(2026, 3, 29, 1, 30)) == at(2026, 3, 29, 5)  # 03:30 CEST, after the jump


def test_window_across_the_fall_back_night_ends_at_local_seven() -> None:
    p = quiet("22:00", "07:00")
    assert quiet_window_end(p, at(2026, 10, 24, 20, 30)) == at(2026, 10, 25, 6)  # 07:00 CET


def test_new_york_changes_on_its_own_date() -> None:
    p = quiet("22:00", "07:00", "America/New_York")  # 2026: EST→EDT on 8 March
    assert quiet_window_end(p, at(2026, 3, 8, 4)) == at(2026, 3, 8, 11)  # 23:00 EST → 07:00 EDT
    assert quiet_window_end(p, at(2026, 3, 1, 4)) == at(2026, 3, 1, 12)  # a week earlier: 07:00 EST


def test_window_ending_in_the_skipped_hour_ends_when_the_clocks_jump() -> None:
    p = quiet("01:00", "02:30")  # 02:30 does not exist in Berlin on 29 March 2026
    assert quiet_window_end(p, at(2026, 3, 29, 0, 30)) == at(2026, 3, 29, 1)  # 01:30 CET → the 03:00 jump


def test_half_hour_dst_zone_gap_is_found_to_the_minute() -> None:
    # Lord Howe Island jumps from 02:00 (+10:30) to 02:30 (+11) on 4 October 2026.
    p = quiet("01:00", "02:15", "Australia/Lord_Howe")
    now = dt.datetime(2026, 10, 4, 1, 30, tzinfo=ZoneInfo("Australia/Lord_Howe"))
    end = quiet_window_end(p, now)
    assert end == at(2026, 10, 3, 15, 30)  # 02:00 at +10:30, the instant the clock shows 02:30
    assert end.astimezone(ZoneInfo("Australia/Lord_Howe")).time() == dt.time(2, 30)


def test_window_ending_in_the_repeated_hour_ends_at_its_next_occurrence() -> None:
    p = quiet("22:00", "02:30")  # 02:00-03:00 happens twice in Berlin on 25 October 2026
    first_pass = at(2026, 10, 25, 0, 10)  # 02:10 CEST
    second_pass = at(2026, 10, 25, 1, 10)  # 02:10 CET, an hour later
    assert quiet_window_end(p, first_pass) == at(2026, 10, 25, 0, 30)  # 02:30 CEST
    assert quiet_window_end(p, second_pass) == at(2026, 10, 25, 1, 30)  # 02:30 CET
    assert quiet_window_end(p, at(2026, 10, 25, 0, 30)) is None  # between the two passes: outside


def test_no_quiet_hours_no_window() -> None:
    assert quiet_window_end(prefs(), at(2026, 1, 1, 3)) is None


# --- digest times ---------------------------------------------------------------------------------


def test_next_digest_is_the_next_local_hour_strictly_after_now() -> None:
    p = prefs(digest="daily", digest_hour=8, timezone=BERLIN)
    assert next_digest_at(p, at(2026, 1, 10, 6, 59)) == at(2026, 1, 10, 7)  # 07:59 CET → 08:00 today
    assert next_digest_at(p, at(2026, 1, 10, 7, 0)) == at(2026, 1, 11, 7)  # exactly 08:00 → tomorrow


def test_next_digest_across_dst_keeps_the_local_hour() -> None:
    p = prefs(digest="daily", digest_hour=8, timezone=BERLIN)
    assert next_digest_at(p, at(2026, 3, 28, 12)) == at(2026, 3, 29, 6)  # 08:00 CEST
    assert next_digest_at(p, at(2026, 10, 24, 12)) == at(2026, 10, 25, 7)  # 08:00 CET


def test_digest_hour_skipped_or_repeated_by_dst_still_comes_once_a_day() -> None:
    p = prefs(digest="daily", digest_hour=2, timezone=BERLIN)
    assert next_digest_at(p, at(2026, 3, 28, 12)) == at(2026, 3, 29, 1)  # 02:00 skipped: at the jump
    assert next_digest_at(p, at(2026, 10, 24, 12)) == at(2026, 10, 25, 0)  # first 02:00 (CEST)
    # Between the two 02:00s of 25 October the next digest is the next day's, not a second one.
    assert next_digest_at(p, at(2026, 10, 25, 0, 30)) == at(2026, 10, 26, 1)


# --- parsing and validation -----------------------------------------------------------------------


def test_parse_full_preferences() -> None:
    p = parse_preferences(
        {
            "muted_channels": ["slack"],
            "quiet": "22:00-07:00",
            "timezone": BERLIN,
            "digest": "daily",
            "digest_hour": 7,
        },
        organization="acme",
        recipient="ann@example.com",
    )
    assert p.muted_channels == frozenset({"slack"})
    assert (p.quiet_start, p.quiet_end) == (dt.time(22), dt.time(7))
    assert (p.timezone, p.digest, p.digest_hour) == (BERLIN, "daily", 7)
    again = parse_preferences(
        {k: v for k, v in p.as_dict().items() if k not in {"organization", "recipient"}},
        organization="acme",
        recipient="ann@example.com",
    )
    assert again == p


def test_parse_defaults() -> None:
    p = parse_preferences({}, organization="acme", recipient="bob")
    assert p == Preferences(organization="acme", recipient="bob")
    assert (p.timezone, p.digest, p.digest_hour, p.muted_channels) == ("UTC", "off", 8, frozenset())


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone 'Mars/Olympus' is not a known time zone"),
        ({"quiet_start": "25:00", "quiet_end": "07:00"}, "quiet_start must be a time 'HH:MM'"),
        ({"quiet": "22:00-7"}, "quiet must be a time 'HH:MM'"),
        ({"quiet": "22:00"}, "quiet must be 'HH:MM-HH:MM'"),
        ({"quiet_start": 1320, "quiet_end": "07:00"}, "quote it in YAML"),
        ({"quiet_start": "22:00"}, "need both quiet_start and quiet_end"),
        ({"quiet": "07:00-07:00"}, "must differ"),
        ({"quiet": "22:00-07:00", "quiet_end": "08:00"}, "either quiet or quiet_start/quiet_end"),
        ({"muted_channels": ["email", "pager"]}, "unknown channel 'pager'"),
        ({"muted_channels": {"email": True}}, "muted_channels must be a list"),
        ({"digest": "weekly"}, "digest must be one of off, daily"),
        ({"digest_hour": 24}, "digest_hour must be between 0 and 23, not 24"),
        ({"digest_hour": -1}, "digest_hour must be between 0 and 23"),
        ({"digest_hour": "eight"}, "digest_hour must be a whole hour"),
        ({"mute": ["email"]}, "unknown preference 'mute'"),
    ],
)
def test_parse_errors_name_the_field(data: dict[str, object], message: str) -> None:
    with pytest.raises(PreferencesError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_preferences(data, organization="acme", recipient="ann@example.com")


def test_recipient_must_not_be_blank() -> None:
    with pytest.raises(PreferencesError, match="recipient"):
        Preferences(organization="acme", recipient=" ")


# --- properties -----------------------------------------------------------------------------------

ZONES = ["UTC", BERLIN, "America/New_York", "Australia/Sydney", "Asia/Kolkata"]
# Quiet windows may not *start* at 02:00-03:59 here: a window whose start the clocks skip over begins
# the instant the gap ends, so the brute-force "first minute outside" would not be its end.
start_times = st.builds(
    dt.time, st.integers(0, 23).filter(lambda h: h not in (2, 3)), st.sampled_from([0, 30])
)
end_times = st.builds(dt.time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45]))
instants = st.builds(
    lambda minutes: at(2026, 1, 1) + dt.timedelta(minutes=minutes), st.integers(0, 365 * 24 * 60)
)


def _inside(p: Preferences, moment: dt.datetime) -> bool:
    """The window's definition, independently: the local wall time in [start, end), wrapping midnight."""
    assert p.quiet_start is not None and p.quiet_end is not None
    wall = moment.astimezone(ZoneInfo(p.timezone)).time()
    if p.quiet_start < p.quiet_end:
        return p.quiet_start <= wall < p.quiet_end
    return wall >= p.quiet_start or wall < p.quiet_end


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(ZONES), start_times, end_times, instants)
def test_quiet_window_end_is_the_first_minute_outside(
    timezone: str, start: dt.time, end: dt.time, now: dt.datetime
) -> None:
    if start == end:
        return
    p = prefs(quiet_start=start, quiet_end=end, timezone=timezone)
    result = quiet_window_end(p, now)
    if not _inside(p, now):
        assert result is None
        return
    moment = now
    while _inside(p, moment):  # every zone here changes offsets on whole minutes
        moment += dt.timedelta(minutes=1)
    assert result == moment


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(ZONES), st.integers(0, 23), instants)
def test_next_digest_is_after_now_within_a_day_and_on_the_hour(
    timezone: str, hour: int, now: dt.datetime
) -> None:
    p = prefs(digest="daily", digest_hour=hour, timezone=timezone)
    result = next_digest_at(p, now)
    assert now < result <= now + dt.timedelta(hours=25)
    local = result.astimezone(ZoneInfo(timezone))
    assert local.minute == 0 and local.hour in (hour, (hour + 1) % 24)  # +1 only for a skipped hour


@given(st.sampled_from(NOTIFICATION_CHANNELS), instants)
def test_decide_never_delays_into_the_past(channel: str, now: dt.datetime) -> None:
    p = quiet("21:00", "06:30", "America/New_York", digest="daily", digest_hour=6)
    decision, when = decide(p, channel, now)
    assert (when is None) == (decision in ("send", "muted"))
    assert when is None or when > now
