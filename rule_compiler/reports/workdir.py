"""The folder of one report run: each query's rows as ``<query id>.csv`` and ``manifest.json``.

The query task writes the folder; each render task reads it (the manifest says which files hold
which query's rows, how many, and whether the row cap cut them), so rows never travel through XCom.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rule_compiler import settings
from rule_compiler.reports.errors import ReportError

MANIFEST_FILE = "manifest.json"
WORKDIR_ENV = "AUTOMATION_REPORTS_WORKDIR"
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
            f"no {MANIFEST_FILE} in {workdir}: the queries of this run did not finish"
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
