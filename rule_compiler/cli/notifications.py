"""``rule-compiler notifications``: recipient preferences, delivery records and stats, the in-app inbox.

Everything here reads and writes the rule store (``--store`` or ``$AUTOMATION_STORE_URL``); nothing
is sent. Bad option values exit with code 2 and a message naming the option.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from rule_compiler.cli.common import CliError, actor_from_args, store_from_args
from rule_compiler.clock import utcnow
from rule_compiler.definitions.action_types import NOTIFICATION_CHANNELS
from rule_compiler.errors import StoreError
from rule_compiler.store import inbox as store_inbox
from rule_compiler.store import notifications as store_notifications
from rule_compiler.store import preferences as store_preferences
from rule_compiler.store._bookkeeping import MAX_PAGE
from rule_compiler.store.preferences import Preferences, PreferencesError, format_time, parse_quiet, zone
from rule_compiler.store.tables import DELIVERY_STATUSES, DIGEST_MODES

if TYPE_CHECKING:
    import sqlalchemy as sa

    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]

EXIT_OK = 0
T = TypeVar("T")


def add_parser(sub: SubParsers) -> SubParsers:
    """Add ``notifications`` and its actions; returns its subparsers (for extensions)."""
    p = sub.add_parser("notifications", help="recipient preferences, delivery records, in-app inbox")
    actions = p.add_subparsers(dest="notifications_command", required=True, metavar="ACTION")
    _add_prefs(actions)

    c = actions.add_parser("deliveries", help="delivery records, newest first")
    c.add_argument("--org", dest="organization")
    c.add_argument("--status", choices=DELIVERY_STATUSES)
    c.add_argument("--rule", dest="rule_id", metavar="RULE_ID")
    c.add_argument("--channel", choices=NOTIFICATION_CHANNELS)
    c.add_argument("--recipient")
    _page(c, 100)
    c.add_argument("--json", action="store_true")
    c.set_defaults(run=deliveries)

    c = actions.add_parser("stats", help="how many deliveries were recorded, per channel and status")
    c.add_argument("--org", dest="organization")
    c.add_argument("--json", action="store_true")
    c.set_defaults(run=stats)

    _add_inbox(actions)
    return actions


def _add_prefs(actions: SubParsers) -> None:
    prefs = actions.add_parser("prefs", help="a recipient's preferences: muted channels, quiet hours, digest")
    prefs_actions = prefs.add_subparsers(dest="prefs_command", required=True, metavar="ACTION")
    c = prefs_actions.add_parser(
        "set",
        help="create or change a recipient's preferences (options not given are kept)",
        description="Options not given keep their stored value (or the default: nothing muted, no "
        "quiet hours, UTC, digest off at 8). --mute replaces the muted channels; --no-mute and "
        "--no-quiet clear them.",
    )
    _recipient(c)
    mute = c.add_mutually_exclusive_group()
    mute.add_argument(
        "--mute", action="append", choices=NOTIFICATION_CHANNELS, help="mute a channel (repeat for several)"
    )
    mute.add_argument("--no-mute", action="store_true", help="mute no channel")
    quiet = c.add_mutually_exclusive_group()
    quiet.add_argument(
        "--quiet", type=_quiet_arg, metavar="HH:MM-HH:MM", help="quiet hours, e.g. 22:00-07:00"
    )
    quiet.add_argument("--no-quiet", action="store_true", help="no quiet hours")
    c.add_argument("--timezone", type=_timezone_arg, help="IANA time zone of the quiet and digest hours")
    c.add_argument(
        "--digest", choices=DIGEST_MODES, help="gather email and in-app messages in a daily digest"
    )
    c.add_argument("--digest-hour", type=_hour_arg, metavar="0-23", help="local hour the digest goes out")
    c.add_argument("--actor", default=None, help="who is changing them (default: $USER)")
    c.add_argument("--json", action="store_true", help="print the result as JSON")
    c.set_defaults(run=prefs_set)
    c = prefs_actions.add_parser("show", help="print a recipient's preferences")
    _recipient(c)
    c.add_argument("--json", action="store_true")
    c.set_defaults(run=prefs_show)
    c = prefs_actions.add_parser("clear", help="remove a recipient's preferences (every message is sent)")
    _recipient(c)
    c.set_defaults(run=prefs_clear)


def _add_inbox(actions: SubParsers) -> None:
    c = actions.add_parser("inbox", help="a recipient's in-app messages (`inbox read` marks them read)")
    c.add_argument("--org", dest="organization", help="organization (required)")
    c.add_argument("--recipient", help="in-app user name (required)")
    c.add_argument("--unread", action="store_true", help="only unread messages")
    _page(c, 50)
    c.add_argument("--json", action="store_true")
    c.set_defaults(run=inbox_list)
    inbox_actions = c.add_subparsers(dest="inbox_command", required=False, metavar="ACTION")
    r = inbox_actions.add_parser("read", help="mark messages read (all unread ones without --id)")
    # SUPPRESS: values given before `read` (on `inbox`) are not overwritten by this parser's defaults.
    r.add_argument("--org", dest="organization", default=argparse.SUPPRESS)
    r.add_argument("--recipient", default=argparse.SUPPRESS)
    r.add_argument("--id", dest="ids", action="append", type=int, metavar="N", help="a message id (repeat)")
    r.set_defaults(run=inbox_read)


# --- commands -------------------------------------------------------------------------------------


def prefs_set(args: argparse.Namespace) -> int:
    engine = _engine(args)
    current = _stored(lambda: store_preferences.get_preferences(engine, args.organization, args.recipient))
    changes: dict[str, Any] = {}
    if args.mute is not None or args.no_mute:
        changes["muted_channels"] = frozenset(args.mute or ())
    if args.quiet is not None or args.no_quiet:
        changes["quiet_start"], changes["quiet_end"] = args.quiet or (None, None)
    for option in ("timezone", "digest", "digest_hour"):
        if getattr(args, option) is not None:
            changes[option] = getattr(args, option)
    try:
        base = current or Preferences(organization=args.organization, recipient=args.recipient)
        prefs = dataclasses.replace(base, **changes)
    except PreferencesError as exc:
        raise CliError(str(exc)) from None
    _stored(
        lambda: store_preferences.set_preferences(engine, prefs, actor=actor_from_args(args), now=utcnow())
    )
    _print_prefs(prefs, as_json=args.json)
    return EXIT_OK


def prefs_show(args: argparse.Namespace) -> int:
    engine = _engine(args)
    prefs = _stored(lambda: store_preferences.get_preferences(engine, args.organization, args.recipient))
    if prefs is None:
        if args.json:
            print("null")
        else:
            print(f"no preferences for {args.recipient} in {args.organization}: every message is sent")
        return EXIT_OK
    _print_prefs(prefs, as_json=args.json)
    return EXIT_OK


def prefs_clear(args: argparse.Namespace) -> int:
    engine = _engine(args)
    removed = _stored(lambda: store_preferences.delete_preferences(engine, args.organization, args.recipient))
    where = f"{args.recipient} in {args.organization}"
    print(f"cleared the preferences of {where}" if removed else f"{where} had no preferences")
    return EXIT_OK


def deliveries(args: argparse.Namespace) -> int:
    engine = _engine(args)
    rows = _stored(
        lambda: store_notifications.list_deliveries(
            engine,
            organization=args.organization,
            status=args.status,
            rule_id=args.rule_id,
            channel=args.channel,
            recipient=args.recipient,
            limit=args.limit,
            offset=args.offset,
        )
    )
    if args.json:
        print(json.dumps([row.as_dict() for row in rows], indent=2, ensure_ascii=False))
        return EXIT_OK
    if not rows:
        print("no deliveries recorded")
    for row in rows:
        when = row.deliver_after if row.status in ("deferred", "digest") else row.sent_at
        line = (
            f"{row.created_at:%Y-%m-%d %H:%M}  {row.organization}/{row.rule_id}/{row.action_id}  "
            f"{row.channel} → {row.recipient}  {row.status}"
        )
        if row.attempts:
            line += f" ({row.attempts} attempt{'s' if row.attempts != 1 else ''})"
        if when is not None:
            line += f"  {'until' if row.status in ('deferred', 'digest') else 'at'} {when:%Y-%m-%d %H:%M} UTC"
        if row.error:
            line += f"  error: {_one_line(row.error, 120)}"
        print(line)
    return EXIT_OK


def stats(args: argparse.Namespace) -> int:
    engine = _engine(args)
    counts = _stored(lambda: store_notifications.delivery_stats(engine, organization=args.organization))
    if args.json:
        print(json.dumps(counts, indent=2, sort_keys=True))
        return EXIT_OK
    if not counts:
        print("no deliveries recorded")
    for channel, by_status in counts.items():
        detail = ", ".join(f"{status} {count}" for status, count in by_status.items())
        print(f"{channel}: {sum(by_status.values())} ({detail})")
    return EXIT_OK


def inbox_list(args: argparse.Namespace) -> int:
    organization, recipient = _inbox_owner(args)
    engine = _engine(args)
    messages = _stored(
        lambda: store_inbox.list_inbox(
            engine,
            organization=organization,
            recipient=recipient,
            unread_only=args.unread,
            limit=args.limit,
            offset=args.offset,
        )
    )
    if args.json:
        print(json.dumps([m.as_dict() for m in messages], indent=2, ensure_ascii=False))
        return EXIT_OK
    if not messages:
        print(f"no {'unread ' if args.unread else ''}messages for {recipient} in {organization}")
    for m in messages:
        state = "read  " if m.read_at else "unread"
        print(f"#{m.id}  {state}  {m.created_at:%Y-%m-%d %H:%M}  {_one_line(m.subject, 100)}")
    return EXIT_OK


def inbox_read(args: argparse.Namespace) -> int:
    organization, recipient = _inbox_owner(args)
    engine = _engine(args)
    changed = _stored(
        lambda: store_inbox.mark_read(
            engine, organization=organization, recipient=recipient, ids=args.ids, now=utcnow()
        )
    )
    print(f"marked {changed} message{'s' if changed != 1 else ''} read")
    return EXIT_OK


# --- helpers --------------------------------------------------------------------------------------


def _recipient(p: argparse.ArgumentParser) -> None:
    p.add_argument("--org", dest="organization", required=True)
    p.add_argument("--recipient", required=True, help="email address or in-app user name, as in `to`")


def _page(p: argparse.ArgumentParser, default: int) -> None:
    p.add_argument("--limit", type=_limit_arg, default=default, help=f"at most this many (default {default})")
    p.add_argument("--offset", type=_offset_arg, default=0, help="skip this many first")


def _engine(args: argparse.Namespace) -> sa.Engine:
    try:
        return store_from_args(args).engine
    except StoreError as exc:
        raise CliError(f"rule store: {exc}") from None


def _stored(call: Callable[[], T]) -> T:
    try:
        return call()
    except StoreError as exc:
        raise CliError(f"rule store: {exc}") from None


def _inbox_owner(args: argparse.Namespace) -> tuple[str, str]:
    organization, recipient = getattr(args, "organization", None), getattr(args, "recipient", None)
    missing = [name for name, value in (("--org", organization), ("--recipient", recipient)) if not value]
    if missing:
        raise CliError(f"inbox needs {' and '.join(missing)}")
    return str(organization), str(recipient)


def _print_prefs(prefs: Preferences, *, as_json: bool) -> None:
    if as_json:
        print(json.dumps(prefs.as_dict(), indent=2))
        return
    quiet = (
        f"{format_time(prefs.quiet_start)}-{format_time(prefs.quiet_end)} {prefs.timezone}"
        if prefs.quiet_start
        else "none"
    )
    digest = f"daily at {prefs.digest_hour:02d}:00 {prefs.timezone}" if prefs.digest == "daily" else "off"
    print(f"{prefs.recipient} in {prefs.organization}")
    print(f"  muted:       {', '.join(sorted(prefs.muted_channels)) or 'nothing'}")
    print(f"  quiet hours: {quiet}")
    print(f"  digest:      {digest} (email and in-app)")
    print(f"  time zone:   {prefs.timezone}")


def _one_line(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _quiet_arg(value: str) -> tuple[dt.time, dt.time]:
    try:
        start, end = parse_quiet(value, field="quiet hours")
    except PreferencesError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if start == end:
        raise argparse.ArgumentTypeError(
            f"start and end must differ (the window would be empty), not {value!r}"
        )
    return start, end


def _timezone_arg(value: str) -> str:
    try:
        zone(value)
    except PreferencesError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def _hour_arg(value: str) -> int:
    if not value.strip().isdigit() or not 0 <= int(value) <= 23:
        raise argparse.ArgumentTypeError(f"must be a whole hour between 0 and 23, not {value!r}")
    return int(value)


def _limit_arg(value: str) -> int:
    if not value.strip().isdigit() or not 1 <= int(value) <= MAX_PAGE:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_PAGE}, not {value!r}")
    return int(value)


def _offset_arg(value: str) -> int:
    if not value.strip().isdigit():
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 0, not {value!r}")
    return int(value)
