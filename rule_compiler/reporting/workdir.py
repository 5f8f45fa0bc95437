"""The folder of one report run: each query's rows as ``<query id>.csv`` and ``manifest.json``.

The query task writes the folder; each render task reads it (the manifest says which files hold
which query's rows, how many, and whether the row cap cut them), so rows never travel through XCom.
The outcome task removes the report's run folders nothing was written to for longer than
``AUTOMATION_REPORTS_WORKDIR_RETENTION`` (:func:`sweep_run_workdirs`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rule_compiler import settings
from rule_compiler.conditions.durations import DurationError, parse_duration
from rule_compiler.reporting.report_errors import ReportError

MANIFEST_FILE = "manifest.json"
WORKDIR_ENV = "AUTOMATION_REPORTS_WORKDIR"
RETENTION_ENV = "AUTOMATION_REPORTS_WORKDIR_RETENTION"
DEFAULT_RETENTION = "7d"
#: A shorter retention could remove the folder of another run of the report while it is running.
MIN_RETENTION = dt.timedelta(hours=1)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")

#: Column kinds, from the first non-NULL value of each column (``""``: every value was NULL).
COLUMN_KINDS = ("integer", "number", "boolean", "date", "datetime", "string", "")


@dataclass(frozen=True)
class QueryResult:
    """One query's rows, streamed to ``path`` (CSV, header row = ``columns``).

    ``first_row``: the first row with JSON-safe values (dates ISO, decimals as text), for the alert
    check. ``column_types``: one of :data:`COLUMN_KINDS` per column (xlsx writes numbers as numbers).
    """

    id: str
    columns: list[str]
    row_count: int
    truncated: bool
    path: Path
    first_row: list[Any] | None
    column_types: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Manifest:
    """What a run's queries produced; times are ISO 8601 in UTC, ``timezone`` the report's own."""

    report_id: str
    interval_start: str
    interval_end: str
    logical_date: str
    parameters: dict[str, Any]
    results: list[QueryResult]
    timezone: str = "UTC"

    def result(self, query_id: str) -> QueryResult:
        for result in self.results:
            if result.id == query_id:
                return result
        known = ", ".join(r.id for r in self.results)
        raise ReportError(f"the run has no result for query '{query_id}' (it has: {known})")


def workdir_base() -> Path:
    """``$AUTOMATION_REPORTS_WORKDIR``, else ``$AIRFLOW_HOME/rule_engine/report_runs``."""
    value = os.environ.get(WORKDIR_ENV)
    return Path(value) if value else settings.home() / "rule_engine" / "report_runs"


def run_workdir(base: Path, dag_id: str, run_id: str) -> Path:
    """The (created) folder of one run: ``<base>/<dag_id>/<run_id>``, names made safe for a path."""
    folder = Path(base) / _safe(dag_id) / _safe(run_id)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def workdir_retention(environ: Mapping[str, str] | None = None) -> dt.timedelta:
    """``$AUTOMATION_REPORTS_WORKDIR_RETENTION`` (``12h``, ``7d``, ``2w``; default 7 days, at least
    an hour). Raises ValueError naming the variable when it is not such a duration."""
    value = (os.environ if environ is None else environ).get(RETENTION_ENV) or DEFAULT_RETENTION
    try:
        retention = parse_duration(value)
    except DurationError as exc:
        raise ValueError(f"{RETENTION_ENV}: {exc}") from None
    if retention < MIN_RETENTION:
        raise ValueError(f"{RETENTION_ENV}: {value!r} is shorter than the minimum of 1h")
    return retention


@dataclass(frozen=True)
class Sweep:
    """What :func:`sweep_run_workdirs` did: folders removed, and those it could not remove (why)."""

    removed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def sweep_run_workdirs(
    base: Path, dag_id: str, *, keep_run_id: str, older_than: dt.timedelta, now: float | None = None
) -> Sweep:
    """Remove the run folders of ``dag_id`` under ``base`` whose newest entry was written more than
    ``older_than`` before ``now`` (epoch seconds, default: now). The folder of ``keep_run_id`` and
    anything that is not a plain folder (a symlink, a file) are left alone."""
    parent = Path(base) / _safe(dag_id)
    cutoff = (time.time() if now is None else now) - older_than.total_seconds()
    keep = _safe(keep_run_id)
    sweep = Sweep()
    try:
        entries = list(os.scandir(parent))
    except FileNotFoundError:
        return sweep
    for entry in entries:
        if entry.name == keep or not entry.is_dir(follow_symlinks=False):
            continue
        folder = Path(entry.path)
        try:
            if _last_written(folder) < cutoff:
                shutil.rmtree(folder)
                sweep.removed.append(entry.name)
        except FileNotFoundError:
            continue  # another run's sweep removed it first
        except OSError as exc:
            sweep.failed[entry.name] = f"{type(exc).__name__}: {exc}"
    return sweep


def _last_written(folder: Path) -> float:
    """The newest modification time of the folder and of what it holds (a run's folder is flat)."""
    newest = folder.lstat().st_mtime
    for entry in os.scandir(folder):
        newest = max(newest, entry.stat(follow_symlinks=False).st_mtime)
    return newest


def _safe(name: str) -> str:
    cleaned = _UNSAFE.sub("_", name).strip(".") or "_"
    if cleaned == name:
        return name
    return f"{cleaned}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"  # distinct names stay distinct


def write_manifest(workdir: Path, manifest: Manifest) -> None:
    """Write ``manifest.json`` atomically; result paths inside ``workdir`` are stored relative to it."""
    data = {
        "report_id": manifest.report_id,
        "interval_start": manifest.interval_start,
        "interval_end": manifest.interval_end,
        "logical_date": manifest.logical_date,
        "timezone": manifest.timezone,
        "parameters": manifest.parameters,
        "results": [_result_data(workdir, result) for result in manifest.results],
    }
    target = Path(workdir) / MANIFEST_FILE
    partial = target.with_suffix(".json.partial")
    partial.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
    partial.replace(target)


def read_manifest(workdir: Path) -> Manifest:
    """The manifest the query task wrote (paths resolved against ``workdir``)."""
    target = Path(workdir) / MANIFEST_FILE
    try:
        data = json.loads(target.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReportError(
            f"no {MANIFEST_FILE} in {workdir}: the queries of this run did not finish, or its "
            f"folder was removed after ${RETENTION_ENV}; clear run_queries to run them again"
        ) from None
    except ValueError as exc:
        raise ReportError(f"{target} is not valid JSON: {exc}") from None
    return Manifest(
        report_id=data["report_id"],
        interval_start=data["interval_start"],
        interval_end=data["interval_end"],
        logical_date=data["logical_date"],
        timezone=data.get("timezone", "UTC"),
        parameters=dict(data.get("parameters") or {}),
        results=[
            QueryResult(
                id=item["id"],
                columns=list(item["columns"]),
                row_count=int(item["row_count"]),
                truncated=bool(item["truncated"]),
                path=Path(workdir) / item["path"],
                first_row=item.get("first_row"),
                column_types=list(item.get("column_types") or []),
            )
            for item in data["results"]
        ],
    )


def _result_data(workdir: Path, result: QueryResult) -> dict[str, Any]:
    path = Path(result.path)
    try:
        stored = str(path.resolve().relative_to(Path(workdir).resolve()))
    except ValueError:
        stored = str(path.resolve())
    return {
        "id": result.id,
        "columns": result.columns,
        "column_types": result.column_types,
        "row_count": result.row_count,
        "truncated": result.truncated,
        "path": stored,
        "first_row": result.first_row,
    }
