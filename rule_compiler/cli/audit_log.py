"""``rule-compiler audit``: who changed what, newest first, with each change's diff.

Reads the rule store directly (whoever can open the store may read every organization's audit):
``--org`` narrows it to one organization; ``--actor``, ``--kind``, ``--name``, ``--action`` and a time
range filter it; ``--diff`` prints each change's diff under its line; ``--json`` prints everything.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from typing import TYPE_CHECKING, Any

from rule_compiler.audit_changes import changes_of
from rule_compiler.cli.common import CliError, store_from_args
from rule_compiler.cli.stats import moment, table
from rule_compiler.clock import utcnow
from rule_compiler.errors import StoreError
from rule_compiler.json_diff import JsonChange
from rule_compiler.store.audit import AuditQuery
from rule_compiler.store.tables import AUDIT_ACTIONS

if TYPE_CHECKING:
    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]

EXIT_OK = 0
MAX_SHOWN = 120  # characters of a value in a diff line


def add_parser(sub: SubParsers) -> None:
    """Add ``audit`` to the top-level commands."""
    p = sub.add_parser("audit", help="who changed what (the audit log), newest first, with diffs")
    p.add_argument("--org", "--organization", dest="organization", help="only this organization")
    p.add_argument("--actor", help="only changes by this user")
    p.add_argument("--kind", help="rule, workflow, report, catalog, membership, run, …")
    p.add_argument("--name", help="only this definition (or member)")
    p.add_argument("--action", choices=AUDIT_ACTIONS, help="only this action")
    p.add_argument("--since", help="a duration back from now (7d, 24h) or an ISO time")
    p.add_argument("--until", help="an ISO time")
    p.add_argument("--limit", type=int, default=50, help="at most this many entries (1-1000, default 50)")
    p.add_argument("--diff", action="store_true", help="print each change's diff")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(run=show_audit)


def show_audit(args: argparse.Namespace) -> int:
    if not 1 <= args.limit <= 1000:
        raise CliError("--limit is between 1 and 1000")
    now = utcnow()
    query = AuditQuery(
        None if args.organization is None else [args.organization],
        actor=args.actor,
        kind=args.kind,
        name=args.name,
        action=args.action,
        since=None if args.since is None else moment(args.since, now, "since"),
        until=None if args.until is None else moment(args.until, now, "until"),
    )
    try:
        store = store_from_args(args)
        entries, has_more = store.audit_page(query, limit=args.limit)
        changes = changes_of(store, entries)
    except StoreError as exc:
        raise CliError(f"rule store: {exc}") from None
    if args.json:
        data = [_as_json(entry, changes[entry.id]) for entry in entries]
        print(json.dumps({"items": data, "has_more": has_more}, indent=2, ensure_ascii=False, default=str))
        return EXIT_OK
    if not entries:
        print("no audit entries match")
        return EXIT_OK
    rows = [
        [
            f"{e.created_at:%Y-%m-%d %H:%M:%S}",
            e.organization,
            e.actor,
            e.action,
            e.kind,
            e.name,
            "-" if e.version is None else e.version,
            _summary(changes[e.id]),
        ]
        for e in entries
    ]
    lines = table(
        ("when (UTC)", "organization", "actor", "action", "kind", "name", "version", "changes"), rows
    )
    print(lines[0])
    print(lines[1])
    for entry, line in zip(entries, lines[2:], strict=True):
        print(line)
        if args.diff:
            for change in changes[entry.id] or []:
                print(f"    {_diff_line(change)}")
    if has_more:
        print(f"(more entries: raise --limit above {args.limit}, or narrow the filters)")
    return EXIT_OK


def _summary(changes: list[JsonChange] | None) -> str:
    if changes is None:
        return "-"
    return f"{len(changes)} change" + ("" if len(changes) == 1 else "s")


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 1] + "…"


def _diff_line(change: JsonChange) -> str:
    if change.op == "added":
        return f"+ {change.path}: {_shown(change.after)}"
    if change.op == "removed":
        return f"- {change.path}: {_shown(change.before)}"
    return f"~ {change.path}: {_shown(change.before)} -> {_shown(change.after)}"


def _as_json(entry: Any, changes: list[JsonChange] | None) -> dict[str, Any]:
    created: dt.datetime = entry.created_at
    return {
        "id": entry.id,
        "organization": entry.organization,
        "actor": entry.actor,
        "action": entry.action,
        "kind": entry.kind,
        "name": entry.name,
        "version": entry.version,
        "hash_before": entry.hash_before,
        "hash_after": entry.hash_after,
        "detail": entry.detail,
        "created_at": created.isoformat(),
        "diff": None
        if changes is None
        else [{"path": c.path, "op": c.op, "before": c.before, "after": c.after} for c in changes],
    }
