"""``rule-compiler retention``: what the retention settings purge, and purging it by hand.

``retention --dry-run`` says, per target, the cutoff, how many finished rows would go (with their
action results and approvals), the oldest, and how many rows older than the cutoff are kept because
they have not finished. Without ``--dry-run`` it purges them as the ``rule_engine_retention`` DAG
does, archiving first to a local folder (``--archive-to``, or the administrator's storage when
``AUTOMATION_RETENTION_ARCHIVE`` is true and it is a local folder). Through the ``rule-compiler``
console script it also covers the ledger of each application database a record action writes to.
The settings are checked first: a retention that would let a redelivered event act twice is refused.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rule_compiler.cli.common import CliError, actor_from_args, store_from_args
from rule_compiler.cli.stats import table
from rule_compiler.clock import utcnow
from rule_compiler.errors import ConfigurationError
from rule_compiler.retention_settings import RetentionSettings
from rule_compiler.settings import home
from rule_compiler.store import RuleStore
from rule_compiler.store.archive import FolderSink
from rule_compiler.store.purge import TARGETS, PurgeResult

if TYPE_CHECKING:
    import sqlalchemy as sa

    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]

EXIT_OK = 0
LEDGER = "ledger"


def add_parser(sub: SubParsers) -> None:
    """Add ``retention`` to the top-level commands."""
    p = sub.add_parser("retention", help="purge (or, with --dry-run, count) rows past their retention")
    p.add_argument("--dry-run", action="store_true", help="only say what would go")
    p.add_argument(
        "--target",
        action="append",
        choices=[*(t.name for t in TARGETS), LEDGER],
        help="only this target (repeatable; default: every one with a retention)",
    )
    p.add_argument(
        "--archive-to", type=Path, help="archive to this local folder first (overrides the setting)"
    )
    p.add_argument("--chunk", type=int, default=1000, help="rows per transaction (default 1000)")
    p.add_argument("--actor", default=None, help="who purges (recorded in the audit log; default: $USER)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(run=run_retention)


@dataclass(frozen=True)
class _Run:
    store: RuleStore
    settings: RetentionSettings
    now: dt.datetime
    targets: list[str] | None  # None: every store target; []: only the ledger
    with_ledger: bool
    args: argparse.Namespace


def run_retention(args: argparse.Namespace) -> int:
    try:
        settings = RetentionSettings.from_env()
    except ConfigurationError as exc:
        raise CliError(str(exc)) from None
    if args.chunk < 1:
        raise CliError("--chunk must be at least 1")
    now = utcnow()
    store = store_from_args(args)
    targets = None if not args.target else [t for t in args.target if t != LEDGER]
    with_ledger = not args.target or LEDGER in args.target
    try:
        run = _Run(store, settings, now, targets, with_ledger, args)
        return _dry_run(run) if args.dry_run else _purge(run)
    finally:
        store.close()


def _dry_run(run: _Run) -> int:
    store, settings, now, targets, with_ledger, args = (
        run.store,
        run.settings,
        run.now,
        run.targets,
        run.with_ledger,
        run.args,
    )
    previews = store.retention_preview(settings, now=now, targets=targets) if targets != [] else []
    ledgers = _ledgers(store, settings, now, args, purge=False) if with_ledger else {}
    kept = [name for name, value in settings.retention.items() if value is None]
    if args.json:
        report = {
            "now": now.isoformat(),
            "targets": [p.as_dict() for p in previews],
            "ledger": ledgers,
            "kept_forever": kept,
        }
        print(json.dumps(report, indent=2))
        return EXIT_OK
    print(f"Dry run at {now.isoformat(timespec='seconds')}: nothing is deleted.")
    rows = []
    for p in previews:
        children = ", ".join(f"{count} {label}" for label, count in p.children.items() if count) or "-"
        oldest = "-" if p.oldest is None else p.oldest.date().isoformat()
        rows.append(
            [p.target, p.cutoff.isoformat(timespec="seconds"), p.rows, children, oldest, p.kept_unfinished]
        )
    for conn_id, count in sorted(ledgers.items()):
        cutoff = settings.cutoff(LEDGER, now)
        rows.append([f"ledger ({conn_id})", "-" if cutoff is None else cutoff.isoformat(timespec="seconds"),
                     count, "-", "-", 0])  # fmt: skip
    print("\n".join(table(["target", "cutoff", "would go", "with", "oldest", "kept unfinished"], rows)))
    if run.with_ledger and getattr(args, "engine_for", None) is None:
        print(
            "Ledgers: not counted here; the rule-compiler console script reaches the application databases."
        )
    if kept:
        print(f"Kept forever (retention 'never'): {', '.join(kept)}.")
    return EXIT_OK


def _purge(run: _Run) -> int:
    store, settings, now, targets, with_ledger, args = (
        run.store,
        run.settings,
        run.now,
        run.targets,
        run.with_ledger,
        run.args,
    )
    sink = _sink(args, settings)
    results: list[PurgeResult] = []

    def progress(result: PurgeResult) -> None:
        results.append(result)
        if not args.json:
            archived = f", archived in {len(result.files)} file(s)" if sink is not None else ""
            before = result.cutoff.isoformat(timespec="seconds")
            chunks = f"{result.chunks} chunk(s)"
            print(
                f"{result.target}: {result.purged} row(s) before {before} purged in {chunks}{archived}",
                flush=True,
            )

    if targets != []:
        store.purge_expired(
            settings, now=now, actor=actor_from_args(args), sink=sink, chunk=args.chunk, targets=targets,
            progress=progress,
        )  # fmt: skip
    ledgers = _ledgers(store, settings, now, args, purge=True) if with_ledger else {}
    if args.json:
        print(json.dumps({"targets": [r.as_dict() for r in results], "ledger": ledgers}, indent=2))
    else:
        for conn_id, count in sorted(ledgers.items()):
            print(f"ledger ({conn_id}): {count} row(s) purged")
    return EXIT_OK


def _sink(args: argparse.Namespace, settings: RetentionSettings) -> FolderSink | None:
    if args.archive_to is not None:
        return FolderSink(args.archive_to)
    if not settings.archive:
        return None
    base = os.environ.get("AUTOMATION_REPORTS_STORAGE") or str(home() / "reports")
    if base.startswith("file://"):
        base = base.removeprefix("file://")
    elif "://" in base:
        raise CliError(
            f"AUTOMATION_RETENTION_ARCHIVE is true and the storage is {base[:100]!r}: the CLI archives to "
            "local folders only; give --archive-to, or let the rule_engine_retention DAG purge"
        )
    return FolderSink(Path(base))


def _ledgers(
    store: RuleStore, settings: RetentionSettings, now: dt.datetime, args: argparse.Namespace, *, purge: bool
) -> dict[str, Any]:
    from rule_compiler.runtime.ledger_retention import count_ledger, ledger_connections, purge_ledger

    cutoff = settings.cutoff(LEDGER, now)
    engine_for = getattr(args, "engine_for", None)
    if cutoff is None or engine_for is None:
        return {}
    found: dict[str, Any] = {}
    for conn_id in sorted(ledger_connections(row.spec_json for row in store.loadable_specs())):
        engine: sa.Engine = engine_for(conn_id)
        found[conn_id] = (
            purge_ledger(engine, older_than=cutoff, chunk=args.chunk)
            if purge
            else count_ledger(engine, older_than=cutoff)
        )
    return found
