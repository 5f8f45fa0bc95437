"""``rule-compiler report log NAME``: a report's recent runs from the execution log, newest first.

Each run shows its interval, status, rows per query, files with their sizes and how each delivery of
its interval went (deliveries belong to the interval: a second run of it shows the first one's).
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from rule_compiler.cli.common import CliError, store_from_args
from rule_compiler.errors import StoreError
from rule_compiler.runtime.report_delivery import human_size
from rule_compiler.store import report_runs
from rule_compiler.store.tables import REPORT_RUN_STATUSES

if TYPE_CHECKING:
    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]

EXIT_OK = 0


def add_parser(actions: SubParsers) -> None:
    """Add ``report log`` to the ``report`` group."""
    p = actions.add_parser("log", help="a report's recent runs: status, rows, files, deliveries")
    p.add_argument("report", metavar="NAME", help="ORG/NAME, or NAME with --org")
    p.add_argument("--org", "--organization", dest="organization", help="organization of the report")
    p.add_argument("--status", choices=REPORT_RUN_STATUSES, help="only runs with this status")
    p.add_argument("--limit", type=_limit, default=10, help="at most this many runs (default 10)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(run=show_log)


def show_log(args: argparse.Namespace) -> int:
    organization, name = _report(args)
    try:
        engine = store_from_args(args).engine
        runs = report_runs.list_report_runs(
            engine, organization=organization, report_name=name, status=args.status, limit=args.limit
        )
        deliveries = {run.id: report_runs.deliveries_of_run(engine, run) for run in runs}
    except StoreError as exc:
        raise CliError(f"rule store: {exc}") from None
    if args.json:
        data = [{**run.as_dict(), "deliveries": [d.as_dict() for d in deliveries[run.id]]} for run in runs]
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return EXIT_OK
    if not runs:
        print(f"no runs of {organization}/{name} recorded")
    for run in runs:
        print(_run_line(run))
        for line in _details(run, deliveries[run.id]):
            print(f"    {line}")
    return EXIT_OK


def _run_line(run: report_runs.ReportRun) -> str:
    took = ""
    if run.finished_at is not None:
        took = f" in {(run.finished_at - run.started_at).total_seconds():.1f} s"
    return (
        f"{run.started_at:%Y-%m-%d %H:%M}  {run.status:<13}  "
        f"{run.interval_start:%Y-%m-%d %H:%M} → {run.interval_end:%Y-%m-%d %H:%M} UTC  "
        f"{run.run_id}{took}"
    )


def _details(run: report_runs.ReportRun, deliveries: list[report_runs.ReportDeliveryRow]) -> list[str]:
    lines = []
    if run.queries:
        rows = ", ".join(
            f"{query_id} {item['rows']}{'+' if item.get('truncated') else ''}"
            for query_id, item in run.queries.items()
        )
        lines.append(f"rows: {rows}")
    if run.files:
        lines.append(
            "files: "
            + ", ".join(f"{item['file']} ({human_size(int(item['bytes']))})" for item in run.files.values())
        )
    if run.alert:
        lines.append(f"alert: {_one_line(str(run.alert.get('reason', '')))}")
    for item in deliveries:
        line = f"delivery {item.delivery_index} {item.type} ({item.target}): {item.status}"
        line += f", {item.attempts} attempt{'s' if item.attempts != 1 else ''}"
        if item.error:
            line += f": {_one_line(item.error)}"
        lines.append(line)
    if run.error:
        lines.append(f"error: {_one_line(run.error)}")
    return lines


def _report(args: argparse.Namespace) -> tuple[str, str]:
    text = str(args.report)
    if "/" in text:
        organization, name = text.split("/", 1)
    elif args.organization:
        organization, name = str(args.organization), text
    else:
        raise CliError("name the report as ORG/NAME, or give --org")
    if not organization or not name:
        raise CliError(f"not a report name: {text!r}")
    return organization, name


def _one_line(text: str, limit: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _limit(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 1_000:
        raise argparse.ArgumentTypeError("a whole number from 1 to 1000")
    return int(value)
